// Tone statistics over the last WINDOW_DAYS days: /api/v1/analytics/tone, each request with its
// own cache key (see lastDaysRange in lib.js), so every request runs the query.
// Env: see lib.js (BASE_URL, LAST_DAY, WINDOW_DAYS, VUS/DURATION or ITERATIONS).
import http from 'k6/http';
import { BASE, options as make, lastDaysRange, checkJson } from './lib.js';

export const options = make(['tone']);

export default function () {
  const res = http.get(`${BASE}/api/v1/analytics/tone?${lastDaysRange().slice(1)}`,
    { tags: { name: 'tone' } });
  checkJson(res, (b) => typeof b.available === 'boolean' && typeof b.n === 'number');
}
