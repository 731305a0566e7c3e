// Analytics mix: top event codes, top countries and tone, with and without date ranges.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8000';
const PATHS = [
  ['top-event-codes', '/api/v1/analytics/top-event-codes?limit=10'],
  ['top-event-codes', '/api/v1/analytics/top-event-codes?since=2015-02-18&until=2015-02-18&limit=20'],
  ['top-countries', '/api/v1/analytics/top-countries?limit=10'],
  ['top-countries', '/api/v1/analytics/top-countries?since=2018-01-01'],
  ['tone', '/api/v1/analytics/tone'],
  ['tone', '/api/v1/analytics/tone?since=2015-02-18&until=2015-02-18'],
];

export const options = {
  vus: Number(__ENV.VUS || 8),
  duration: __ENV.DURATION || '20s',
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
  },
};

export default function () {
  const [name, path] = PATHS[Math.floor(Math.random() * PATHS.length)];
  const res = http.get(`${BASE}${path}`, { tags: { name } });
  check(res, { 'status 200': (r) => r.status === 200 });
}
