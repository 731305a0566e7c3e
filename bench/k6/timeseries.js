// Hourly time series over the last WINDOW_DAYS days: /api/v1/analytics/timeseries?bucket=hour,
// each request with its own cache key (see lastDaysRange in lib.js), so every request runs the
// query. Env: see lib.js (BASE_URL, LAST_DAY, WINDOW_DAYS, VUS/DURATION or ITERATIONS).
import http from 'k6/http';
import { BASE, options as make, lastDaysRange, checkJson, hasRows } from './lib.js';

export const options = make(['timeseries-hour']);

export default function () {
  const res = http.get(`${BASE}/api/v1/analytics/timeseries?bucket=hour${lastDaysRange()}`,
    { tags: { name: 'timeseries-hour' } });
  checkJson(res, hasRows);
}
