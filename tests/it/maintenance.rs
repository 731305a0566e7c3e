//! Lake maintenance over the real sample files: compaction merges a day's batch files while
//! queries keep answering exactly, and retention drops old partitions, catalog first. These
//! tests skip, saying why, when ../shared/gdelt is absent.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::real_data::make_mirror;
use crate::support::{event_row, shared_dir, test_config, Mirror, MirrorServer, TestApp};

/// The lake's files relative to `lake/`.
fn lake_files(app: &TestApp) -> Vec<String> {
    let root = format!("{}/lake/", app.data_dir.path().display());
    app.lake_files()
        .0
        .into_iter()
        .map(|p| p.strip_prefix(&root).unwrap().to_owned())
        .collect()
}

/// Answers that compaction must not change.
async fn answers(app: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        "/api/v1/analytics/top-event-codes?limit=500&since=2015-02-18&until=2015-02-18",
        "/api/v1/analytics/top-countries?limit=500",
        "/api/v1/analytics/top?dimension=source_domain&count=mentions&limit=20",
        "/api/v1/events?until=2015-02-18&fields=GlobalEventID,EventCode,DATEADDED&limit=1000&action_country=US",
        "/api/v1/mentions?event_id=410413618&limit=100",
    ] {
        let (status, mut body) = app.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body.as_object_mut().unwrap().remove("freshness");
        body.as_object_mut().unwrap().remove("next_cursor");
        out.push(body);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_merges_a_day_while_queries_answer_exactly_and_retention_drops_old_days() {
    let Some(shared) = shared_dir() else { return };
    let mirror = make_mirror(&shared);
    let server = MirrorServer::start(mirror.path());
    let app = TestApp::start(&server.base_url).await;
    let job = app.ingest(5).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let before = answers(&app).await;
    let (_, tone) = app
        .get("/api/v1/analytics/tone?since=2015-02-18&until=2015-02-18")
        .await;
    assert_eq!(tone["n"], 8709);
    assert_eq!(tone["freshness"]["files_read"], 4);
    assert_eq!(lake_files(&app).len(), 9);

    // Queries run throughout; every answer must be the whole day, never part or double.
    let app = Arc::new(app);
    let stop = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (app, stop, checked) = (app.clone(), stop.clone(), checked.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let (status, tone) = app
                    .get("/api/v1/analytics/timeseries?bucket=day&since=2015-02-18&until=2015-02-18&count=mentions")
                    .await;
                assert_eq!(status, 200, "{tone}");
                assert_eq!(tone["rows"][0]["events"], 8709, "{tone}");
                let (status, page) = app
                    .get("/api/v1/mentions?since=2015-02-18&until=2015-02-18&event_id=410413618")
                    .await;
                assert_eq!(status, 200, "{page}");
                assert_eq!(page["count"], 75, "{page}");
                checked.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let (status, queued) = app.post("/api/v1/lake/compact").await;
    assert_eq!(status, 202, "{queued}");
    let job = app.wait(queued["status_url"].as_str().unwrap()).await;
    stop.store(true, Ordering::SeqCst);
    reader.await.unwrap();
    assert!(checked.load(Ordering::SeqCst) > 0);
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "maintenance");
    let compacted: Vec<(String, String, i64, i64)> = job["result"]["compacted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["table"].as_str().unwrap().to_owned(),
                d["date"].as_str().unwrap().to_owned(),
                d["files_merged"].as_i64().unwrap(),
                d["rows"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        compacted,
        vec![
            ("events".into(), "2015-02-18".into(), 4, 8709),
            (
                "mentions".into(),
                "2015-02-18".into(),
                4,
                8462 + 8857 + 9709 + 10180
            ),
        ]
    );
    assert_eq!(job["result"]["retention_cutoff"], Value::Null);
    assert_eq!(job["result"]["skipped"].as_array().unwrap().len(), 0);

    // The same answers from one file per day and table; the old files are gone.
    assert_eq!(answers(&app).await, before);
    let (_, tone) = app
        .get("/api/v1/analytics/tone?since=2015-02-18&until=2015-02-18")
        .await;
    assert_eq!(tone["n"], 8709);
    assert_eq!(tone["freshness"]["files_read"], 1);
    let files = lake_files(&app);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(
        files[0].starts_with("events/date=2015-02-18/day-"),
        "{files:?}"
    );
    assert_eq!(files[1], "events/date=2018-01-01/20180101000000.parquet");
    assert!(
        files[2].starts_with("mentions/date=2015-02-18/day-"),
        "{files:?}"
    );
    assert!(app.lake_files().1.is_empty(), "temporary files left");

    // Nothing left to merge: a second run changes nothing.
    let (_, queued) = app.post("/api/v1/lake/compact").await;
    let again = app.wait(queued["status_url"].as_str().unwrap()).await;
    assert_eq!(again["result"]["compacted"], Value::Array(vec![]));
    assert_eq!(lake_files(&app), files);
    let (status, bad) = app.post("/api/v1/lake/compact?since=2015-02-30").await;
    assert_eq!(status, 400);
    assert_eq!(bad["parameter"], "since");

    // Retention: keep the days since 2016-01-01, so the 2015 partitions go, catalog first.
    let app = Arc::into_inner(app).unwrap();
    let data_dir = app.stop().await;
    let today = chrono::Utc::now().date_naive();
    let keep = (today - chrono::NaiveDate::from_ymd_opt(2016, 1, 1).unwrap()).num_days();
    let mut config = test_config(data_dir.path(), &server.base_url);
    config.lake.retention_days = keep as u32;
    let app = TestApp::start_with(config, data_dir).await;
    let (_, queued) = app.post("/api/v1/lake/compact").await;
    let job = app.wait(queued["status_url"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["retention_cutoff"], "2016-01-01");
    assert_eq!(job["result"]["files_expired"], 8);
    assert_eq!(job["result"]["parquet_files_expired"], 2);
    assert_eq!(
        lake_files(&app),
        vec!["events/date=2018-01-01/20180101000000.parquet".to_owned()]
    );
    let (_, tone) = app.get("/api/v1/analytics/tone").await;
    assert_eq!(tone["n"], 2414);
    let (_, cov) = app
        .get("/api/v1/ingest/coverage?since=2015-02-18&until=2015-02-18")
        .await;
    assert_eq!(
        (&cov["days"][0]["ingested"], &cov["days"][0]["expired"]),
        (&Value::from(4), &Value::from(4))
    );
    // Dropped files stay known: ingesting the same batches again fetches nothing.
    let job = app.ingest(5).await;
    let outcomes: Vec<&str> = job["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, vec!["already_ingested"; 9]);
    let (_, tone) = app.get("/api/v1/analytics/tone").await;
    assert_eq!(tone["n"], 2414);
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_maintenance_compacts_even_with_the_ingestion_scheduler_off() {
    let mut mirror = Mirror::new();
    for (batch, ids) in [("20150218231500", [1, 2]), ("20150218233000", [3, 4])] {
        let rows: Vec<String> = ids.iter().map(|&i| event_row(i, batch, &[])).collect();
        mirror.add_export(batch, &rows).await;
    }
    let server = MirrorServer::start(mirror.dir.path());
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path(), &server.base_url);
    config.lake.maintenance_enabled = true;
    config.lake.maintenance_schedule = "*/1 * * * * *".into();
    assert!(!config.ingest.scheduler_enabled);
    let app = TestApp::start_with(config, data_dir).await;
    let job = app.ingest(2).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let mut files = lake_files(&app);
    for _ in 0..100 {
        if files.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        files = lake_files(&app);
    }
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].starts_with("events/date=2015-02-18/day-"),
        "{files:?}"
    );
    // Rows in batch order, so the merged file is sorted by DATEADDED for row-group pruning.
    let merged = std::fs::File::open(app.data_dir.path().join("lake").join(&files[0])).unwrap();
    let mut added = Vec::new();
    let mut ids = Vec::new();
    for batch in parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(merged)
        .unwrap()
        .build()
        .unwrap()
    {
        use arrow::array::AsArray;
        let batch = batch.unwrap();
        let column = batch.column_by_name("DATEADDED").unwrap();
        let text = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8).unwrap();
        added.extend(
            text.as_string::<i32>()
                .iter()
                .map(|v| v.unwrap().to_owned()),
        );
        let id = batch.column_by_name("GlobalEventID").unwrap();
        ids.extend_from_slice(id.as_primitive::<arrow::datatypes::Int64Type>().values());
    }
    assert_eq!(
        added,
        [
            "2015-02-18T23:15:00",
            "2015-02-18T23:15:00",
            "2015-02-18T23:30:00",
            "2015-02-18T23:30:00"
        ]
    );
    assert_eq!(ids, [1, 2, 3, 4]);
    let (_, tone) = app.get("/api/v1/analytics/tone").await;
    assert_eq!(
        (&tone["n"], &tone["freshness"]["files_read"]),
        (&Value::from(4), &Value::from(1))
    );
    app.stop().await;
    server.stop().await;
}
