// Smoke: /health answers 200 under light load. Fails the run on any error.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8000';

export const options = {
  vus: 2,
  duration: __ENV.DURATION || '10s',
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
  },
};

export default function () {
  const res = http.get(`${BASE}/health`);
  check(res, {
    'status 200': (r) => r.status === 200,
    // The sample data is years old, so the lake reports degraded freshness; both mean alive.
    'alive': (r) => ['ok', 'degraded'].includes(r.json('status')),
  });
}
