// Mixed read load, meant to run while an ingestion job adds days to the lake: search and
// analytics over random windows of 1 to WINDOW_DAYS days inside FIRST_DAY..LAST_DAY (days not
// ingested yet answer empty results), random top-N limits. Each file that lands also resets the
// server's analytics cache; bench/scale.sh reports the cache hits there were. Weights: search 30%, top-event-codes 20%, top event_root 15%,
// tone 15%, timeseries 20%. Env: see lib.js (BASE_URL, FIRST_DAY, LAST_DAY, WINDOW_DAYS,
// VUS, DURATION).
import http from 'k6/http';
import { BASE, TERMS, options as make, randomRange, between, checkJson, hasRows } from './lib.js';

const NAMES = ['search', 'top-event-codes', 'top-event-root', 'tone', 'timeseries-hour'];
export const options = make(NAMES);

const isTone = (b) => typeof b.available === 'boolean';
const REQUESTS = [
  [30, 'search', () => `/api/v1/events/search?query=${encodeURIComponent(TERMS[between(0, TERMS.length - 1)])}&limit=50`, hasRows],
  [20, 'top-event-codes', () => `/api/v1/analytics/top-event-codes?limit=${between(5, 500)}`, hasRows],
  [15, 'top-event-root', () => `/api/v1/analytics/top?dimension=event_root&limit=${between(5, 500)}`, hasRows],
  [15, 'tone', () => '/api/v1/analytics/tone?', isTone],
  [20, 'timeseries-hour', () => '/api/v1/analytics/timeseries?bucket=hour', hasRows],
];
const TOTAL = REQUESTS.reduce((s, r) => s + r[0], 0);

export default function () {
  let pick = Math.random() * TOTAL;
  let chosen = REQUESTS[REQUESTS.length - 1];
  for (const r of REQUESTS) {
    if (pick < r[0]) {
      chosen = r;
      break;
    }
    pick -= r[0];
  }
  const [, name, path, shape] = chosen;
  const res = http.get(`${BASE}${path()}${randomRange()}`, { tags: { name } });
  checkJson(res, shape);
}
