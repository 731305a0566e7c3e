//! Several tables, backfill (API and CLI, interrupted and resumed), coverage with gaps,
//! retry limits, format changes and freshness.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{event_row, mention_row, Mirror, MirrorServer, TestApp};

fn slot(day: &str, hhmm: &str) -> String {
    format!("{day}{hhmm}00")
}

fn outcome_counts(job: &Value) -> (usize, usize, usize) {
    let files = job["files"].as_array().unwrap();
    let count = |o: &str| files.iter().filter(|f| f["outcome"] == o).count();
    (
        count("ingested"),
        count("already_ingested"),
        count("failed"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_fills_both_tables_and_coverage_shows_the_gaps() {
    // 2015-02-19 has three slots published (a listing with holes), one of them a bad zip;
    // 2015-02-20 has one, and is the newest day, so its listing is not complete yet.
    let mut mirror = Mirror::new();
    for (i, hhmm) in ["0000", "0015", "0100"].iter().enumerate() {
        let batch = slot("20150219", hhmm);
        let id = 100 + i as i64;
        mirror
            .add_export(&batch, &[event_row(id, &batch, &[])])
            .await;
        mirror
            .add_mentions(
                &batch,
                &[
                    mention_row(id, &batch, "a.example"),
                    mention_row(id, &batch, "b.example"),
                ],
            )
            .await;
    }
    let broken = slot("20150219", "0100");
    mirror.add_raw(
        &format!("{broken}.mentions.CSV.zip"),
        b"<html>oops</html>",
        None,
    );
    let last = slot("20150220", "0000");
    mirror
        .add_export(&last, &[event_row(200, &last, &[])])
        .await;
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;

    let (status, body) = app
        .post("/api/v1/ingest/backfill?from=2015-02-19&to=2015-02-20")
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["queued"], 2);
    let job = app.wait(body["status_url"].as_str().unwrap()).await;
    assert_eq!(job["kind"], "backfill");
    assert_eq!(
        job["params"],
        json!({"from": "2015-02-19", "to": "2015-02-20", "tables": ["events", "mentions"], "feeds": ["english"]})
    );
    assert_eq!(job["state"], "failed");
    assert_eq!(
        (
            job["total"].as_i64(),
            job["finished"].as_i64(),
            job["failed"].as_i64()
        ),
        (Some(7), Some(7), Some(1))
    );
    assert_eq!(outcome_counts(&job), (6, 0, 1));
    assert_eq!(job["rows_stored"], 4 + 4);

    let (lake, tmp) = app.lake_files();
    let rel: Vec<String> = lake
        .iter()
        .map(|p| p.split("/lake/").nth(1).unwrap().to_owned())
        .collect();
    assert!(
        rel.contains(&"mentions/date=2015-02-19/20150219000000.parquet".to_owned()),
        "{rel:?}"
    );
    assert_eq!(rel.len(), 6);
    assert!(tmp.is_empty());

    let (status, cov) = app
        .get("/api/v1/ingest/coverage?since=2015-02-18&until=2015-02-20")
        .await;
    assert_eq!(status, 200);
    assert_eq!(cov["table"], "events");
    assert_eq!(
        cov["days"],
        json!([
            // Outside the backfill: the listing was not read for it.
            {"date": "2015-02-18", "slots": 4, "expected": 0, "ingested": 0, "failed": 0, "pending": 0,
             "missing_upstream": null, "rows_stored": 0, "rows_quarantined": 0, "expired": 0},
            {"date": "2015-02-19", "slots": 96, "expected": 3, "ingested": 3, "failed": 0, "pending": 0,
             "missing_upstream": 93, "rows_stored": 3, "rows_quarantined": 0, "expired": 0},
            {"date": "2015-02-20", "slots": 96, "expected": 1, "ingested": 1, "failed": 0, "pending": 0,
             "missing_upstream": null, "rows_stored": 1, "rows_quarantined": 0, "expired": 0},
        ])
    );
    let (_, cov) = app
        .get("/api/v1/ingest/coverage?since=2015-02-19&until=2015-02-19&table=mentions")
        .await;
    assert_eq!(
        cov["days"][0],
        json!({"date": "2015-02-19", "slots": 96, "expected": 3, "ingested": 2, "failed": 1, "pending": 0,
               "missing_upstream": 93, "rows_stored": 4, "rows_quarantined": 0, "expired": 0})
    );
    let (status, body) = app.get("/api/v1/ingest/coverage?table=gdelt").await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "table must be one of events, mentions, gkg, got \"gdelt\""
    );
    let (status, body) = app
        .post("/api/v1/ingest/backfill?from=0001-01-01&to=2015-02-19")
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"code": "invalid_parameter", "message": "from (0001-01-01) is before GDELT 2.0 began (2015-02-18)", "parameter": "from"})
    );
    let (status, body) = app
        .post("/api/v1/ingest/backfill?from=2015-02-19&to=9999-12-31")
        .await;
    assert_eq!((status, body["parameter"].as_str()), (400, Some("to")));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("to (9999-12-31) is after today ("),
        "{body}"
    );
    let (status, body) = app.post("/api/v1/ingest/backfill?from=2015-02-19").await;
    assert_eq!((status, body["parameter"].as_str()), (400, Some("to")));
    let (status, body) = app
        .post("/api/v1/ingest/backfill?from=2015-02-19&to=2015-02-19&tables=events,gdelt")
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "tables: \"gdelt\" is not a table; accepted: events, mentions, gkg"
    );
    let (status, body) = app
        .post("/api/v1/ingest/backfill?from=2015-02-19&to=2015-02-19&tables=mentions&feeds=v1")
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"code": "invalid_parameter", "message": "none of these feeds has these tables: GDELT 1.0 (v1) has only events", "parameter": "tables"})
        )
    );
    let (status, body) = app
        .get("/api/v1/ingest/coverage?since=2015-02-19&until=2015-02-19&table=mentions&feed=v1")
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"code": "invalid_parameter", "message": "the v1 feed has no mentions files (GDELT 1.0 has only events)", "parameter": "table"})
        )
    );
    let (status, body) = app
        .get("/api/v1/ingest/coverage?since=2100-01-01&until=2100-01-02")
        .await;
    assert_eq!((status, body["parameter"].as_str()), (400, Some("until")));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("until (2100-01-02) is after today ("),
        "{body}"
    );

    // Running it again stores nothing twice and retries only the failed file.
    let (_, body) = app
        .post("/api/v1/ingest/backfill?from=2015-02-19&to=2015-02-20")
        .await;
    let again = app.wait(body["status_url"].as_str().unwrap()).await;
    assert_eq!(outcome_counts(&again), (0, 6, 1));
    assert_eq!(server.hits(&format!("{broken}.mentions.CSV.zip")), 2);
    assert_eq!(
        server.hits(&format!("{}.export.CSV.zip", slot("20150219", "0000"))),
        1
    );
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_keeps_failing_is_left_failed_after_max_attempts() {
    let mut mirror = Mirror::new();
    let batch = slot("20150219", "0000");
    mirror
        .add_export(&batch, &[event_row(1, &batch, &[])])
        .await;
    let server = MirrorServer::start(mirror.dir.path());
    server.fail(&format!("{batch}.export.CSV.zip"), 404, 100);
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::test_config(data_dir.path(), &server.base_url);
    config.ingest.max_attempts = 2;
    let app = TestApp::start_with(config, data_dir).await;
    for _ in 0..2 {
        let job = app.ingest(1).await;
        assert!(
            job["files"][0]["error"]
                .as_str()
                .unwrap()
                .ends_with("answered HTTP 404"),
            "{job}"
        );
    }
    let job = app.ingest(1).await;
    assert_eq!(
        job["files"][0]["error"],
        format!(
            "not retried: failed 2 times (ingest.max_attempts); last error: GET {}{batch}.export.CSV.zip answered HTTP 404",
            server.base_url
        )
    );
    assert_eq!(server.hits(&format!("{batch}.export.CSV.zip")), 2);
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_whose_column_count_changed_is_set_aside_whole() {
    let mut mirror = Mirror::new();
    let batch = slot("20150219", "0000");
    // GDELT 1.0-shaped rows (57 fields) where 61 are expected.
    let old: Vec<String> = (0..3)
        .map(|i| {
            let row = event_row(i, &batch, &[]);
            row.split('\t').take(57).collect::<Vec<_>>().join("\t")
        })
        .collect();
    mirror.add_export(&batch, &old).await;
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;
    let job = app.ingest(1).await;
    let kept = app
        .data_dir
        .path()
        .join(format!("quarantine/{batch}.export.CSV.zip"));
    assert_eq!(
        job["files"][0]["error"],
        format!(
            "column count changed: every line has 57 fields, expected 61; nothing stored, the zip is kept at {} for re-processing",
            kept.display()
        )
    );
    assert!(kept.is_file());
    let (lake, tmp) = app.lake_files();
    assert!(lake.is_empty() && tmp.is_empty(), "{lake:?} {tmp:?}");
    assert!(app
        .engine
        .catalog
        .quarantined(&format!("{batch}.export.CSV.zip"))
        .unwrap()
        .is_empty());
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_batch_makes_health_ok() {
    let now = chrono::Utc::now().naive_utc();
    let batch = (now - chrono::Duration::minutes(20))
        .format("%Y%m%d%H%M00")
        .to_string();
    let mut mirror = Mirror::new();
    mirror
        .add_export(&batch, &[event_row(1, &batch, &[])])
        .await;
    mirror
        .add_mentions(&batch, &[mention_row(1, &batch, "a.example")])
        .await;
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;
    assert_eq!(app.get("/health").await.1["status"], "degraded");
    let job = app.ingest(1).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let (_, health) = app.get("/health").await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["reasons"], json!([]));
    let age = health["tables"][0]["age_seconds"].as_i64().unwrap();
    assert!((1200..1300).contains(&age), "{age}");
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gdelt_lake_ingest_newest_batch_age_seconds{table=\"mentions\"}"),
        "{metrics}"
    );
    app.stop().await;
    server.stop().await;
}

/// Runs the executable with a data directory and a source.
async fn gdelt_lake(
    args: &[&str],
    data: &std::path::Path,
    base_url: &str,
) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_gdelt-lake"))
        .args(args)
        .args(["--log-level", "error", "--set", "ingest.workers=1"])
        .arg("--data-dir")
        .arg(data)
        .arg("--base-url")
        .arg(base_url)
        .env_remove("DATA_LAKE_PATH")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backfill_resumes_and_ends_in_the_same_lake() {
    let mut mirror = Mirror::new();
    let mut expected_rows = 0;
    for h in 0..6 {
        for (q, m) in ["00", "15", "30", "45"].into_iter().enumerate() {
            let batch = slot("20150219", &format!("{h:02}{m}"));
            // Event ids unique across batches: a repeated id would be a duplicate, not stored.
            let rows: Vec<String> = (0..5)
                .map(|i| event_row((h * 4 + q as i64) * 100 + i, &batch, &[]))
                .collect();
            expected_rows += rows.len();
            mirror.add_export(&batch, &rows).await;
        }
    }
    // A newer day in the listing makes 2015-02-19 complete in it.
    let next = slot("20150220", "0000");
    mirror
        .add_export(&next, &[event_row(9999, &next, &[])])
        .await;
    let server = MirrorServer::start(mirror.dir.path());
    server.slow_down(Duration::from_millis(150));
    let data = tempfile::tempdir().unwrap();
    let args = [
        "backfill",
        "--from",
        "2015-02-19",
        "--to",
        "2015-02-19",
        "--tables",
        "events",
    ];
    let mut first = gdelt_lake(&args, data.path(), &server.base_url).await;
    // Let a few files land, then kill it without warning.
    let lake = data.path().join("lake/events/date=2015-02-19");
    for _ in 0..200 {
        if std::fs::read_dir(&lake).map(|d| d.count()).unwrap_or(0) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    first.kill().await.unwrap();
    let stored_before = std::fs::read_dir(&lake).unwrap().count();
    assert!((3..24).contains(&stored_before), "{stored_before}");

    server.slow_down(Duration::ZERO);
    let second = gdelt_lake(&args, data.path(), &server.base_url)
        .await
        .wait_with_output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let last = stdout.lines().last().unwrap();
    assert_eq!(last, "job 2 succeeded: 24 file(s)");
    let progress = stdout.lines().rev().nth(1).unwrap();
    assert!(
        progress.starts_with("[####################] files 24/24 (0 failed)"),
        "{progress}"
    );
    assert_eq!(std::fs::read_dir(&lake).unwrap().count(), 24);
    // Each batch was downloaded once, except the ones in flight when the first run died.
    let downloads: usize = (0..6)
        .flat_map(|h| ["00", "15", "30", "45"].map(|m| slot("20150219", &format!("{h:02}{m}"))))
        .map(|b| server.hits(&format!("{b}.export.CSV.zip")))
        .sum();
    assert!((24..=26).contains(&downloads), "{downloads}");

    // The coverage command reads the catalog the runs left.
    let out = gdelt_lake(
        &["coverage", "--since", "2015-02-19", "--until", "2015-02-19"],
        data.path(),
        &server.base_url,
    )
    .await
    .wait_with_output()
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let row: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row,
        vec![
            "2015-02-19",
            "96",
            "24",
            "24",
            "0",
            "0",
            "72",
            &expected_rows.to_string(),
            "0",
            "0"
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_translingual_feed_is_its_own_feed_and_ids_do_not_collide() {
    let batch = "20150218224500";
    let mut mirror = Mirror::new();
    mirror
        .add_export(
            batch,
            &[event_row(7, batch, &[("Actor1Name", "SHARED ID ENGLISH")])],
        )
        .await;
    // Real translingual rows (the excerpt's first 50 share one batch), plus an event whose id
    // the English feed also uses.
    let mut rows: Vec<String> = match crate::support::shared_dir() {
        Some(dir) => std::fs::read_to_string(dir.join("excerpts/aamend-spark-gdelt/eventsT.csv"))
            .unwrap()
            .lines()
            .filter(|l| l.contains(&format!("\t{batch}\t")))
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    let real = rows.len();
    rows.push(event_row(
        7,
        batch,
        &[("Actor1Name", "SHARED ID TRANSLINGUAL")],
    ));
    mirror
        .add_file(&format!("{batch}.translation.export.CSV"), &rows)
        .await;
    let server = MirrorServer::start(mirror.dir.path());
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::test_config(data_dir.path(), &server.base_url);
    config.ingest.feeds = vec!["english".into(), "translingual".into()];
    config.ingest.tables = vec!["events".into()];
    let app = TestApp::start_with(config, data_dir).await;
    let job = app.ingest(1).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let mut files: Vec<(String, i64)> = job["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap().to_owned(),
                f["rows_stored"].as_i64().unwrap(),
            )
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            (format!("{batch}.export.CSV.zip"), 1),
            (
                format!("{batch}.translation.export.CSV.zip"),
                real as i64 + 1
            ),
        ]
    );
    let (lake, _) = app.lake_files();
    assert!(
        lake.iter().any(|p| p.ends_with(&format!(
            "events/date=2015-02-18/{batch}.translation.parquet"
        ))),
        "{lake:?}"
    );
    let (_, found) = app.get("/api/v1/events/search?query=shared%20id").await;
    let mut seen: Vec<(i64, String, String)> = found["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["GlobalEventID"].as_i64().unwrap(),
                r["feed"].as_str().unwrap().to_owned(),
                r["Actor1Name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (7, "english".into(), "SHARED ID ENGLISH".into()),
            (7, "translingual".into(), "SHARED ID TRANSLINGUAL".into()),
        ]
    );
    let (_, tone) = app.get("/api/v1/analytics/tone").await;
    assert_eq!(tone["n"].as_u64().unwrap() as usize, real + 2);
    let (_, cov) = app
        .get("/api/v1/ingest/coverage?since=2015-02-18&until=2015-02-18&feed=translingual")
        .await;
    assert_eq!(cov["feed"], "translingual");
    assert_eq!(
        (
            cov["days"][0]["expected"].as_i64(),
            cov["days"][0]["rows_stored"].as_i64()
        ),
        (Some(1), Some(real as i64 + 1))
    );
    app.stop().await;
    server.stop().await;
}
