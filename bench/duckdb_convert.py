"""DuckDB's own CSV -> Parquet conversion of the GDELT files, for comparison.

Usage: duckdb_convert.py [--json] [--threads N] SRC_DIR OUT_DIR

Converts every SRC_DIR/*.CSV (unzipped events exports and mentions files, as ingested) with
read_csv(delim='\\t', header=false, quote='', escape='', all_varchar=true) -> COPY (FORMAT
parquet, COMPRESSION zstd), one Parquet file each. Only the conversions are timed (not
starting Python or importing duckdb). Prints "<rows> rows in <s>s (<rows/s> rows/s)", or with
--json one JSON object: {"tool", "version", "files", "rows", "seconds", "csv_bytes"}.
"""
import argparse
import glob
import json
import os
import time

import duckdb

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("src")
parser.add_argument("out")
parser.add_argument("--json", action="store_true", help="print one JSON object")
parser.add_argument("--threads", type=int, default=0, help="DuckDB threads (0 = its default)")
args = parser.parse_args()

os.makedirs(args.out, exist_ok=True)
files = sorted(glob.glob(os.path.join(args.src, "*.CSV")))  # events and mentions, as ingested
con = duckdb.connect()
if args.threads:
    con.execute(f"SET threads = {args.threads}")
start = time.perf_counter()
rows = 0
for f in files:
    target = os.path.join(args.out, os.path.basename(f) + ".parquet")
    con.execute(
        f"COPY (SELECT * FROM read_csv('{f}', delim='\\t', header=false, quote='', escape='', "
        f"all_varchar=true)) TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
    )
    rows += con.execute(f"SELECT count(*) FROM '{target}'").fetchone()[0]
elapsed = time.perf_counter() - start
if args.json:
    print(json.dumps({
        "tool": "duckdb",
        "version": duckdb.__version__,
        "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
        "files": len(files),
        "rows": rows,
        "seconds": elapsed,
        "csv_bytes": sum(os.path.getsize(f) for f in files),
    }))
else:
    print(f"{rows} rows in {elapsed:.2f}s ({rows / elapsed:.0f} rows/s)")
