// Top-N over the last WINDOW_DAYS days of the lake: each iteration asks
// /api/v1/analytics/top-event-codes and /api/v1/analytics/top?dimension=event_root, each with a
// random limit (5..500) and its own cache key (see lastDaysRange in lib.js), so every request
// runs the query. Env: see lib.js (BASE_URL, LAST_DAY, WINDOW_DAYS, VUS/DURATION or ITERATIONS).
import http from 'k6/http';
import { BASE, options as make, lastDaysRange, between, checkJson, hasRows } from './lib.js';

export const options = make(['top-event-codes', 'top-event-root']);

export default function () {
  let res = http.get(
    `${BASE}/api/v1/analytics/top-event-codes?limit=${between(5, 500)}${lastDaysRange()}`,
    { tags: { name: 'top-event-codes' } });
  checkJson(res, hasRows);
  res = http.get(
    `${BASE}/api/v1/analytics/top?dimension=event_root&limit=${between(5, 500)}${lastDaysRange()}`,
    { tags: { name: 'top-event-root' } });
  checkJson(res, hasRows);
}
