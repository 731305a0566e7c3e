"""DuckDB's own CSV -> Parquet conversion of the GDELT files, for comparison.

Usage: duckdb_convert.py SRC_DIR OUT_DIR   (prints "<rows> rows in <s>s (<rows/s> rows/s)")
"""
import glob
import os
import sys
import time

import duckdb

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
files = sorted(glob.glob(os.path.join(src, "*.CSV")))  # events and mentions, as ingested
con = duckdb.connect()
start = time.perf_counter()
rows = 0
for f in files:
    target = os.path.join(out, os.path.basename(f) + ".parquet")
    con.execute(
        f"COPY (SELECT * FROM read_csv('{f}', delim='\\t', header=false, quote='', escape='', "
        f"all_varchar=true)) TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
    )
    rows += con.execute(f"SELECT count(*) FROM '{target}'").fetchone()[0]
elapsed = time.perf_counter() - start
print(f"{rows} rows in {elapsed:.2f}s ({rows / elapsed:.0f} rows/s)")
