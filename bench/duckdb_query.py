"""The API's analytical queries run directly in DuckDB, for comparison with the HTTP answers.

Usage: duckdb_query.py --data-dir DIR --since D --until D [--runs 200] [--threads 2]
                       [--api http://127.0.0.1:PORT] [--json OUT.json]

Reads the Parquet files under DIR/lake/events/date=D/ for every batch date D in since..until
(the files the catalog lists after `compact`, one per day) with read_parquet([...]), the way
gdelt-lake does, and runs each query --runs times on one connection (SET threads, as
query.threads), after one untimed warm-up run. The SQL is the SQL of src/query/mod.rs
(`search`, `top_by`, `tone`, `series`) with the condition of src/query/filter.rs
(`EventFilter::to_sql`) for the parameters the k6 scripts send:

  search           search?query=TERM&limit=50       TERM: bench/k6/lib.js's TERMS in turn
  top-event-codes  top-event-codes?limit=L          L random in 5..500
  top-event-root   top?dimension=event_root&limit=L L random in 5..500
  tone             tone
  timeseries-hour  timeseries?bucket=hour

Each run executes the statement with its bound parameters and fetches every row (the API also
turns the rows into JSON and sends them, which this does not). With --api, each query's answer
is also fetched once from the server and compared with DuckDB's (same rows, same files read).
Prints a table of p50/p95/p99 in ms; --json writes them.
"""
import argparse
import datetime as dt
import glob
import json
import os
import random
import statistics
import sys
import time
import urllib.parse
import urllib.request

import duckdb

# bench/k6/lib.js's TERMS, in the same order.
TERMS = ["ukraine", "police", "reuters", "kyiv", "zürich", "washington", "zzzz-no-match"]

# filter.rs TEXT_COLUMNS.
TEXT_COLUMNS = [
    "Actor1Name",
    "Actor2Name",
    "Actor1Geo_FullName",
    "Actor2Geo_FullName",
    "ActionGeo_FullName",
    "SOURCEURL",
]


def sql_string(text):
    return "'" + text.replace("'", "''") + "'"


def lake_files(data_dir, since, until):
    files = []
    day = since
    while day <= until:
        files += sorted(glob.glob(os.path.join(data_dir, "lake", "events", f"date={day}", "*.parquet")))
        day += dt.timedelta(days=1)
    return files


def select_list(con, source):
    """mod.rs `select_list(&[])`: dates as YYYY-MM-DD, timestamps as ISO 8601 UTC."""
    out, names = [], []
    for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall():
        names.append(name)
        if kind == "DATE":
            out.append(f"strftime(\"{name}\", '%Y-%m-%d') AS \"{name}\"")
        elif kind.startswith("TIMESTAMP"):
            out.append(f"strftime(\"{name}\", '%Y-%m-%dT%H:%M:%SZ') AS \"{name}\"")
        else:
            out.append(f'"{name}"')
    return ", ".join(out), names


def queries(con, source):
    """name -> (sql, make_params(i), api_path(params)) for each query."""
    columns, _ = select_list(con, source)
    text_condition = "(" + " OR ".join(f'contains(lower("{c}"), ?)' for c in TEXT_COLUMNS) + ")"
    # mod.rs search: EventFilter { text, .. }.to_sql(), ORDER BY DATEADDED DESC, id DESC LIMIT ?
    search = (
        f"SELECT {columns} FROM {source} WHERE {text_condition} "
        f'ORDER BY "DATEADDED" DESC, "GlobalEventID" DESC LIMIT ?'
    )

    def top(key):
        # mod.rs top_by with Measure::Events and no filter (condition TRUE).
        return (
            f"SELECT key, n FROM (SELECT {key} AS key, count(*) AS n FROM {source} "
            f"WHERE TRUE GROUP BY 1) WHERE key IS NOT NULL AND key <> '' "
            f"ORDER BY n DESC, key ASC LIMIT ?"
        )

    # mod.rs tone.
    tone = (
        f'SELECT count("AvgTone"), avg("AvgTone"), min("AvgTone"), max("AvgTone") '
        f"FROM {source} WHERE TRUE"
    )
    # mod.rs series with Bucket::Hour, Measure::Events.
    b = "date_trunc('hour', \"DATEADDED\")"
    series = (
        f"SELECT strftime({b}, '%Y-%m-%dT%H:%M:%SZ') AS b, count(*) AS n, count(*) AS events, "
        f'avg("AvgTone") AS tone FROM {source} WHERE TRUE AND "DATEADDED" IS NOT NULL '
        f"GROUP BY {b} ORDER BY {b}"
    )
    limit = lambda: random.randint(5, 500)  # noqa: E731
    return {
        "search": (
            search,
            lambda i: [TERMS[i % len(TERMS)].lower()] * len(TEXT_COLUMNS) + [50],
            lambda p: "/api/v1/events/search?" + urllib.parse.urlencode({"query": p[0], "limit": 50}),
        ),
        "top-event-codes": (
            top('"EventCode"'),
            lambda i: [limit()],
            lambda p: f"/api/v1/analytics/top-event-codes?limit={p[0]}",
        ),
        "top-event-root": (
            top('"EventRootCode"'),
            lambda i: [limit()],
            lambda p: f"/api/v1/analytics/top?dimension=event_root&limit={p[0]}",
        ),
        "tone": (tone, lambda i: [], lambda p: "/api/v1/analytics/tone?"),
        "timeseries-hour": (series, lambda i: [], lambda p: "/api/v1/analytics/timeseries?bucket=hour"),
    }


def percentile(values, q):
    """Linear interpolation between the closest ranks (as k6's trend percentiles)."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def compare(name, rows, body, files, id_index):
    """None when DuckDB's rows are the API's answer over the same files; else the difference."""
    read = body.get("freshness", {}).get("files_read")
    if read != files:
        return f"the API read {read} file(s), {files} listed here"
    if name == "search":
        ours = [row[id_index] for row in rows]
        theirs = [r["GlobalEventID"] for r in body["rows"]]
        return None if ours == theirs else f"GlobalEventIDs differ: api {theirs[:3]}... duckdb {ours[:3]}..."
    if name.startswith("top"):
        ours = [(k, n) for k, n in rows]
        theirs = [(r["key"], r["n"]) for r in body["rows"]]
        return None if ours == theirs else f"rows differ: api {theirs[:3]}... duckdb {ours[:3]}..."
    if name == "tone":
        n, avg, lo, hi = rows[0]
        same = n == body["n"] and (avg is None or abs(avg - body["avg_tone"]) < 1e-9 * max(1, abs(avg)))
        return None if same else f"api n={body['n']} avg={body['avg_tone']}, duckdb n={n} avg={avg}"
    if name == "timeseries-hour":
        ours = [(b, n) for b, n, _, _ in rows]
        theirs = [(r["bucket"], r["n"]) for r in body["rows"]]
        return None if ours == theirs else f"rows differ: api {theirs[:2]}... duckdb {ours[:2]}..."
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--since", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--until", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--api", help="server base URL, to check the answers are the same")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--only", help="comma-separated query names")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    random.seed(args.seed)

    files = lake_files(args.data_dir, args.since, args.until)
    if not files:
        sys.exit(f"no Parquet files under {args.data_dir}/lake/events for {args.since}..{args.until}")
    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.execute("SET enable_progress_bar = false")
    source = "read_parquet([" + ", ".join(sql_string(os.path.abspath(f)) for f in files) + "])"
    days = (args.until - args.since).days + 1
    results = {
        "duckdb_version": duckdb.__version__,
        "threads": args.threads,
        "files": len(files),
        "days": days,
        "rows": con.execute(f"SELECT count(*) FROM {source}").fetchone()[0],
        "runs": args.runs,
        "queries": {},
    }
    wanted = set(args.only.split(",")) if args.only else None
    id_index = select_list(con, source)[1].index("GlobalEventID")
    for name, (sql, make_params, api_path) in queries(con, source).items():
        if wanted and name not in wanted:
            continue
        con.execute(sql, make_params(0)).fetchall()  # warm-up, untimed
        times = []
        for i in range(args.runs):
            params = make_params(i)
            start = time.perf_counter()
            con.execute(sql, params).fetchall()
            times.append((time.perf_counter() - start) * 1000)
        entry = {
            "p50": percentile(times, 0.50),
            "p95": percentile(times, 0.95),
            "p99": percentile(times, 0.99),
            "mean": statistics.fmean(times),
        }
        if args.api:
            params = make_params(0)
            rows = con.execute(sql, params).fetchall()
            # The API's since/until for the same partitions.
            url = f"{args.api}{api_path(params)}&since={args.since}&until={args.until}"
            with urllib.request.urlopen(url, timeout=120) as r:
                body = json.load(r)
            problem = compare(name, rows, body, len(files), id_index)
            entry["same_as_api"] = problem is None
            if problem:
                entry["difference"] = problem
        results["queries"][name] = entry

    print(
        f"DuckDB {results['duckdb_version']} (Python), threads={args.threads}, {len(files)} file(s), "
        f"{days} day(s), {results['rows']} rows, {args.runs} runs each"
    )
    print(f"{'query':<16} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}  same as API")
    for name, e in results["queries"].items():
        same = {True: "yes", False: "NO: " + e.get("difference", ""), None: "-"}[e.get("same_as_api")]
        print(f"{name:<16} {e['p50']:>9.2f} {e['p95']:>9.2f} {e['p99']:>9.2f}  {same}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
