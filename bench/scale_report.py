"""Prints bench/scale.sh's results as markdown tables.

Usage: scale_report.py RESULTS_DIR   (the files scale.sh writes there)
"""
import json
import os
import re
import sys

R = sys.argv[1]


def path(name):
    return os.path.join(R, name)


def exists(name):
    return os.path.exists(path(name))


def text(name):
    with open(path(name)) as f:
        return f.read()


def load(name):
    with open(path(name)) as f:
        return json.load(f)


def timing(name):
    """(/usr/bin/time seconds, peak RSS MB) of NAME.time."""
    seconds, kb = text(name + ".time").split()[-2:]
    return float(seconds), int(kb) / 1024


def fmt_int(n):
    return f"{n:,.0f}"


def mb(n):
    return n / 1e6


def backfill_rows(name):
    """Rows stored, from the backfill's final progress line."""
    rows = re.findall(r"\brows (\d+)\b", text(name + ".out"))
    if not rows:
        raise SystemExit(f"no 'rows N' in {name}.out:\n{text(name + '.out')}")
    return int(rows[-1])


def coverage_rows(name):
    """Rows stored per day from a `coverage` output (the 'rows' column)."""
    lines = text(name).splitlines()
    header = lines[0].split()
    i = header.index("rows")
    return sum(int(line.split()[i]) for line in lines[1:] if line.strip())


def cache(label):
    if not exists(f"cache-{label}.before"):
        return None
    h0, m0 = map(int, text(f"cache-{label}.before").split())
    h1, m1 = map(int, text(f"cache-{label}.after").split())
    return h1 - h0, m1 - m0


def k6(label):
    """The k6 summary's metrics, or None when the run left none."""
    if not exists(f"k6-{label}.json"):
        return None
    return load(f"k6-{label}.json")["metrics"]


def k6_rc(label):
    return int(text(f"k6-{label}.rc").strip()) if exists(f"k6-{label}.rc") else None


def trend(metrics, name="http_req_duration"):
    t = metrics.get(name, {})
    return t.get("med"), t.get("p(95)"), t.get("p(99)")


def ms(v):
    return "-" if v is None else f"{v:.2f}"


def ratio(a, b):
    return "-" if a is None or not b else f"{a / b:.2f}x"


def errors(metrics):
    """Failed requests (http_req_failed is a rate whose 'passes' are the failures)."""
    f = metrics.get("http_req_failed", {})
    return int(f.get("passes", 0))


def failed_checks(metrics):
    return int(metrics.get("checks", {}).get("fails", 0))


def epoch(iso):
    """Seconds since 1970 of a `2026-12-04T04:46:20.585Z` timestamp; None for None."""
    if not iso:
        return None
    import datetime as dt

    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def verdict(ok, miss):
    return "met" if ok else f"**missed** ({miss})"


def print_targets(goals, p):
    """The issue's targets, each as measured in this run."""
    print()
    print("Targets (ratios from this one run on this machine):")
    print()
    row("target", "measured", "verdict")
    row("---", "---", "---")
    for name, label in [("duckdb_convert", "DuckDB"), ("pyarrow_convert", "pyarrow")]:
        if name in goals:
            x = goals["ingest_rows_s"] / goals[name]
            row(
                f"ingest rows/s ≥ 1.5× {label}'s conversion",
                f"{x:.2f}× ({fmt_int(goals['ingest_rows_s'])} vs {fmt_int(goals[name])} rows/s)",
                verdict(x >= 1.5, f"needs {1.5 / x:.2f}× more" if x > 0 else "no rows"),
            )
    rss = goals["ingest_rss"]
    row("ingest peak RSS < 150 MB", f"{rss:.0f} MB", verdict(rss < 150, f"by {rss - 150:.0f} MB"))
    for r, api, duck in goals.get("api_vs_duckdb", []):
        p50, p99 = api[0] / duck[0], api[2] / duck[2]
        row(
            f"{r}: API p50 within 1.2× of raw DuckDB (one request at a time)",
            f"p50 {p50:.2f}× ({api[0]:.1f} vs {duck[0]:.1f} ms), p99 {p99:.2f}×",
            verdict(
                p50 <= 1.2,
                f"{p50 / 1.2:.2f}× over; {api[0] - 1.2 * duck[0]:.1f} ms beyond the 1.2× budget",
            ),
        )
    m = k6("load-topn")
    if m:
        for r in ["top-event-codes", "top-event-root"]:
            p99 = trend(m, f"http_req_duration{{name:{r}}}")[2]
            if p99 is not None:
                row(
                    f"{r}: p99 < 100 ms over {p['query_days']} day(s) of a {p['days']}-day lake, "
                    f"{p['vus']} users",
                    f"{p99:.1f} ms",
                    verdict(p99 < 100, f"by {p99 - 100:.1f} ms"),
                )


def row(*cells):
    print("| " + " | ".join(str(c) for c in cells) + " |")


def main():
    p = load("params.json")
    print()
    print(f"## Scale benchmark ({p['date']})")
    print()
    print(
        f"Machine: {p['cores']} cores, {p['mem_gib']} GiB, {p['os']}. Binary: {p['version']} "
        f"(**{p['profile']}** profile, `{p['bin']}`). {p['k6']}; Python {p['python']}, "
        f"duckdb {p['duckdb_python']}, pyarrow {p['pyarrow']}."
    )
    print(
        f"Mirror: {p['days']} day(s) from {p['start']} to {p['end']}, {p['batches_per_day']} "
        f"batches a day, seed {p['seed']}. Queries read the last {p['query_days']} day(s) "
        f"({p['query_since']}..{p['end']}). Load: {p['vus']} k6 users for {p['duration']}; "
        f"sequential latency: 1 user, {p['runs']} iterations."
    )
    if p["profile"] == "debug":
        print()
        print(
            "**Dev-profile binary** (Rust and DuckDB's C++ at opt-level 0): gdelt-lake's numbers "
            "are a floor, not the product's speed; the Python references are optimised builds."
        )
    print()

    # Step | result.
    row("step", "result")
    row("---", "---")
    synth = text("synth.out").strip()
    m = re.search(r"wrote (\d+) batches: (\d+) events, (\d+) mentions, ([\d.]+) MB of zips", synth)
    if m:
        took = f", {timing('synth')[0]:.1f} s" if exists("synth.time") else " (reused)"
        row(
            "a. synth mirror",
            f"{int(m[1]):,} batches: {int(m[2]):,} events, {int(m[3]):,} mentions, "
            f"{m[4]} MB of zips{took}",
        )

    zip_day = int(text("ingest.zip_bytes"))
    s, rss = timing("ingest")
    rows = backfill_rows("ingest")
    ev, me = coverage_rows("ingest.coverage.events"), coverage_rows("ingest.coverage.mentions")
    goals = {"ingest_rows_s": rows / s, "ingest_rss": rss}
    row(
        f"b. gdelt-lake backfill of {p['start']}, events + mentions ({mb(zip_day):.1f} MB of zips)",
        f"{fmt_int(rows)} rows ({fmt_int(ev)} events + {fmt_int(me)} mentions) in {s:.2f} s: "
        f"**{fmt_int(rows / s)} rows/s**, {mb(zip_day) / s:.2f} MB/s of zips, peak RSS {rss:.0f} MB",
    )
    for name, label in [
        ("duckdb_convert", "DuckDB `read_csv` → `COPY (FORMAT parquet, zstd)`"),
        ("pyarrow_convert", "pyarrow `csv.read_csv` → `parquet.write_table(zstd)`"),
    ]:
        j = load(name + ".json")
        total, rss = timing(name)
        goals[name] = j["rows"] / j["seconds"]
        row(
            f"b. {label} {j['version']}, same day unzipped ({mb(j['csv_bytes']):.1f} MB of CSV), all text",
            f"{fmt_int(j['rows'])} rows in {j['seconds']:.2f} s: **{fmt_int(j['rows'] / j['seconds'])} rows/s**, "
            f"{mb(zip_day) / j['seconds']:.2f} MB/s of the same zips, peak RSS {rss:.0f} MB "
            f"(whole Python process, {total:.2f} s with start-up)",
        )

    qzip = int(text("query_backfill.zip_bytes"))
    s, rss = timing("query_backfill")
    rows = backfill_rows("query_backfill")
    row(
        f"c. gdelt-lake backfill of {p['days']} day(s), events only ({mb(qzip):.1f} MB of zips)",
        f"{fmt_int(rows)} rows in {s:.1f} s: {fmt_int(rows / s)} rows/s, {mb(qzip) / s:.2f} MB/s, "
        f"peak RSS {rss:.0f} MB",
    )
    s, rss = timing("compact")
    days = re.search(r"(\d+) day\(s\) compacted", text("compact.out"))
    row("c. compact", f"{days[1] if days else '?'} day(s) merged in {s:.1f} s, peak RSS {rss:.0f} MB")
    if exists("query_server.rss_kb"):
        row("c. query server", f"peak RSS {int(text('query_server.rss_kb')) / 1024:.0f} MB over every k6 run")

    mixed = k6("mixed")
    if mixed:
        seed_days, rest_from = text("mixed_days").split()
        start, end = load("mixed_job_start.json"), load("mixed_job_end.json")
        t0, t1 = map(float, text("mixed_window").split())
        # Ingestion overlapped the k6 run from its start (or the job's) to its end (or the job's).
        began = max(t0, epoch(start.get("started_at")) or t0)
        ended = min(t1, epoch(end.get("finished_at")) or t1)
        window = max(ended - began, 1e-3)
        d_rows = end["rows_stored"] - start["rows_stored"]
        d_files = end["finished"] - start["finished"]
        alone = backfill_rows("query_backfill") / timing("query_backfill")[0]
        med, p95, p99 = trend(mixed)
        hm = cache("mixed")
        ok = "passed" if k6_rc("mixed") == 0 else "**FAILED**"
        row(
            f"d. mixed reads ({p['vus']} users, {p['duration']}, random windows of 1..{p['query_days']} "
            f"day(s)) on a {seed_days}-day lake while `POST /ingest/backfill` adds {rest_from}..{p['end']}",
            f"{mixed['http_reqs']['rate']:.1f} req/s, p50 {ms(med)} ms, p95 {ms(p95)} ms, "
            f"p99 {ms(p99)} ms, {errors(mixed)} failed requests, {failed_checks(mixed)} failed checks "
            f"(thresholds {ok})" + (f"; analytics cache {hm[0]} hits / {hm[1]} misses" if hm else ""),
        )
        state = end["state"]
        note = (
            "still running when the k6 run ended"
            if state in ("running", "queued")
            else f"**{state} {t1 - ended:.1f} s before the k6 run ended** (that part had no ingestion)"
        )
        row(
            "d. ingestion during the mixed reads",
            f"{d_files} file(s), {fmt_int(d_rows)} rows in {window:.1f} s: "
            f"{fmt_int(d_rows / window)} rows/s (the events backfill of step c, without reads: "
            f"{fmt_int(alone)} rows/s); job at {end['finished']}/{end['total']} files, {note}",
        )
        if exists("mixed_server.rss_kb"):
            row("d. mixed server", f"peak RSS {int(text('mixed_server.rss_kb')) / 1024:.0f} MB")
    print()

    # Load.
    print(f"Query load: {p['vus']} k6 users for {p['duration']} per script, over the last {p['query_days']} day(s).")
    print()
    row("k6 script", "request", "req/s", "p50 ms", "p95 ms", "p99 ms", "failed", "cache hits / misses", "thresholds")
    row("---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---")
    names = {
        "search": ["search"],
        "topn": ["top-event-codes", "top-event-root"],
        "tone": ["tone"],
        "timeseries": ["timeseries-hour"],
    }
    for script, reqs in names.items():
        m = k6(f"load-{script}")
        if not m:
            row(script, "-", "no summary", "", "", "", "", "", "**FAILED**")
            continue
        hm = cache(f"load-{script}")
        ok = "passed" if k6_rc(f"load-{script}") == 0 else "**FAILED**"
        for i, r in enumerate(reqs):
            med, p95, p99 = trend(m, f"http_req_duration{{name:{r}}}")
            rate = m.get(f"http_reqs{{name:{r}}}", {}).get("rate")
            row(
                script if i == 0 else "",
                r,
                f"{rate:.1f}" if rate is not None else "-",
                ms(med), ms(p95), ms(p99),
                errors(m) if i == 0 else "",
                f"{hm[0]} / {hm[1]}" if hm and i == 0 else "",
                ok if i == 0 else "",
            )
    if mixed:
        print()
        print("Mixed load, per request (while ingesting):")
        print()
        row("request", "req/s", "p50 ms", "p95 ms", "p99 ms")
        row("---", "---:", "---:", "---:", "---:")
        for r in ["search", "top-event-codes", "top-event-root", "tone", "timeseries-hour"]:
            med, p95, p99 = trend(mixed, f"http_req_duration{{name:{r}}}")
            rate = mixed.get(f"http_reqs{{name:{r}}}", {}).get("rate")
            row(r, f"{rate:.1f}" if rate is not None else "-", ms(med), ms(p95), ms(p99))
        med, p95, p99 = trend(mixed)
        row("all", f"{mixed['http_reqs']['rate']:.1f}", ms(med), ms(p95), ms(p99))
    print()

    # Latency: API (1 user) against DuckDB directly.
    dq = load("duckdb_query.json") if exists("duckdb_query.json") else {"queries": {}}
    print(
        f"Latency, one request at a time: the API (k6, 1 user, {p['runs']} iterations) against the "
        f"same SQL run directly in DuckDB {dq.get('duckdb_version', '?')} (Python, threads="
        f"{dq.get('threads', '?')}, {dq.get('runs', '?')} runs) over the same "
        f"{dq.get('files', '?')} Parquet file(s), {fmt_int(dq.get('rows', 0))} rows."
    )
    print()
    row(
        "query", "API p50", "API p95", "API p99", "DuckDB p50", "DuckDB p95", "DuckDB p99",
        "API/DuckDB p50", "p95", "p99", "same answer",
    )
    row("---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---")
    seq_hits = {}
    for script, reqs in names.items():
        m = k6(f"seq-{script}")
        seq_hits[script] = cache(f"seq-{script}")
        for r in reqs:
            a = trend(m, f"http_req_duration{{name:{r}}}") if m else (None, None, None)
            d = dq["queries"].get(r, {})
            dd = (d.get("p50"), d.get("p95"), d.get("p99"))
            same = {True: "yes", False: "**no**: " + d.get("difference", ""), None: "-"}[d.get("same_as_api")]
            row(r, *map(ms, a), *map(ms, dd), *(ratio(x, y) for x, y in zip(a, dd)), same)
            if a[0] and dd[0]:
                goals.setdefault("api_vs_duckdb", []).append((r, a, dd))
    print()
    hits = sum(h[0] for h in seq_hits.values() if h)
    misses = sum(h[1] for h in seq_hits.values() if h)
    print(
        "What was measured: every analytics request reads the same partitions (the last "
        f"{p['query_days']} day(s)) but has its own cache key (`until` is a random date on or after "
        "the lake's last day, where no partition exists), and top-N takes a random `limit` in "
        "5..500, so each request runs its query instead of answering from the server's cache "
        f"(sequential runs: {hits} cache hits / {misses} misses; load runs: see the table). Search "
        "is not cached; its terms are taken in turn (bench/k6/lib.js). API times are k6's "
        "http_req_duration over 127.0.0.1 (catalog lookup, DuckDB, JSON, HTTP); DuckDB's are "
        "execute + fetchall in one Python process. k6, the server and the references share the "
        "same cores."
    )
    print_targets(goals, p)
    failed = [f[3:-3] for f in sorted(os.listdir(R)) if f.startswith("k6-") and f.endswith(".rc")
              and text(f).strip() != "0"]
    if failed:
        print()
        print(f"**k6 thresholds failed** (errors or failed checks) for: {', '.join(failed)}")


main()
