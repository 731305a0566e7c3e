// Event search. Two modes:
//  - default (bench/run.sh): a rotating set of terms and date ranges over the sample lake;
//  - scale mode, when LAST_DAY is set (bench/scale.sh): the terms of lib.js taken in turn,
//    over the last WINDOW_DAYS days of the lake (search answers are not cached).
// Fails the run on any failed request or check.
import http from 'k6/http';
import { check } from 'k6';
import { TERMS as SCALE_TERMS, LAST_DAY, options as make, lastDaysRange, iteration, checkJson, hasRows } from './lib.js';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8000';
const TERMS = ['ukraine', 'police', 'china', 'bbc', 'president', 'israel', 'zzzz-no-match', ''];
const RANGES = ['', '&since=2015-02-18&until=2015-02-18', '&since=2018-01-01'];
const SCALE = LAST_DAY !== '';

export const options = SCALE ? make(['search']) : {
  vus: Number(__ENV.VUS || 8),
  duration: __ENV.DURATION || '20s',
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
  },
};

export default function () {
  if (SCALE) {
    const term = SCALE_TERMS[iteration() % SCALE_TERMS.length];
    const res = http.get(`${BASE}/api/v1/events/search?query=${encodeURIComponent(term)}&limit=50${lastDaysRange()}`,
      { tags: { name: 'search' } });
    checkJson(res, hasRows);
    return;
  }
  const term = TERMS[Math.floor(Math.random() * TERMS.length)];
  const range = RANGES[Math.floor(Math.random() * RANGES.length)];
  const res = http.get(`${BASE}/api/v1/events/search?query=${encodeURIComponent(term)}&limit=50${range}`,
    { tags: { name: 'search' } });
  check(res, { 'status 200': (r) => r.status === 200, 'has rows': (r) => Array.isArray(r.json('rows')) });
}
