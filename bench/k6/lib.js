// Shared by the scale scripts (topn.js, tone.js, timeseries.js, mixed.js, search.js in scale
// mode). Environment:
//   BASE_URL      the server (default http://127.0.0.1:8000)
//   VUS, DURATION a load run: VUS virtual users for DURATION (defaults 8, 20s)
//   ITERATIONS    instead: one virtual user running exactly this many iterations (the
//                 sequential latency run that bench/duckdb_query.py is compared with)
//   FIRST_DAY, LAST_DAY  the lake's batch dates (YYYY-MM-DD, inclusive)
//   WINDOW_DAYS   days each query reads (default 7)
import { check } from 'k6';
import exec from 'k6/execution';

export const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8000';
export const FIRST_DAY = __ENV.FIRST_DAY || '';
export const LAST_DAY = __ENV.LAST_DAY || '';
export const WINDOW_DAYS = Number(__ENV.WINDOW_DAYS || 7);

// Search terms, taken in turn (bench/duckdb_query.py uses the same list in the same order).
export const TERMS = ['ukraine', 'police', 'reuters', 'kyiv', 'zürich', 'washington', 'zzzz-no-match'];

const DAY_MS = 86400000;
const parse = (d) => Date.parse(`${d}T00:00:00Z`);
const fmt = (ms) => new Date(ms).toISOString().slice(0, 10);

// Options with thresholds that fail the run on any failed request or check. `names` are the
// request tags to report separately (their own http_req_duration submetric in the summary).
export function options(names) {
  const thresholds = {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
  };
  for (const n of names || []) {
    thresholds[`http_req_duration{name:${n}}`] = ['max>=0'];
    thresholds[`http_reqs{name:${n}}`] = ['count>=0'];
  }
  if (__ENV.ITERATIONS) {
    return {
      scenarios: {
        sequential: {
          executor: 'per-vu-iterations',
          vus: 1,
          iterations: Number(__ENV.ITERATIONS),
          maxDuration: __ENV.MAX_DURATION || '30m',
        },
      },
      thresholds,
    };
  }
  return { vus: Number(__ENV.VUS || 8), duration: __ENV.DURATION || '20s', thresholds };
}

// The iteration's number across the whole test (for taking TERMS in turn).
export function iteration() {
  return exec.scenario.iterationInTest;
}

// A random integer in lo..=hi.
export function between(lo, hi) {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

// The last WINDOW_DAYS days of the lake, as `&since=...&until=...`. `until` is a random date
// on or after LAST_DAY: no partition exists after it, so every request reads exactly the same
// partitions and runs the same SQL, but has its own key in the server's analytics cache (which
// keeps answers until the lake changes). Up to year ~9700 (the API takes 4-digit years).
export function lastDaysRange() {
  const last = parse(LAST_DAY);
  const since = fmt(last - (WINDOW_DAYS - 1) * DAY_MS);
  const until = fmt(last + between(0, 2800000) * DAY_MS);
  return `&since=${since}&until=${until}`;
}

// A random window of 1 to WINDOW_DAYS days inside FIRST_DAY..LAST_DAY, as
// `&since=...&until=...` (the many windows make answers from the server's cache rare).
export function randomRange() {
  const first = parse(FIRST_DAY);
  const days = Math.round((parse(LAST_DAY) - first) / DAY_MS) + 1;
  const width = between(1, Math.min(WINDOW_DAYS, days));
  const start = first + between(0, days - width) * DAY_MS;
  return `&since=${fmt(start)}&until=${fmt(start + (width - 1) * DAY_MS)}`;
}

// Checks status 200 and a JSON body; `shape` (optional) checks the parsed body.
export function checkJson(res, shape) {
  let body = null;
  try {
    body = JSON.parse(res.body);
  } catch (e) {
    body = null;
  }
  const checks = {
    'status 200': () => res.status === 200,
    'body is JSON': () => body !== null && typeof body === 'object',
  };
  if (shape) {
    checks['expected shape'] = () => body !== null && shape(body);
  }
  return check(res, checks);
}

export const hasRows = (b) => Array.isArray(b.rows);
