//! GDELT 1.0 events into the events table, and each GlobalEventID stored once per feed.

use serde_json::{json, Value};

use crate::support::{event_row, shared_dir, Mirror, MirrorServer, TestApp};

fn ids_by_feed(found: &Value) -> Vec<(String, i64)> {
    let mut seen: Vec<(String, i64)> = found["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["feed"].as_str().unwrap().to_owned(),
                r["GlobalEventID"].as_i64().unwrap(),
            )
        })
        .collect();
    seen.sort();
    seen
}

fn file_counts(job: &Value, name: &str) -> (i64, i64, i64) {
    let file = job["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == name)
        .unwrap_or_else(|| panic!("{name} not in {job}"));
    (
        file["rows_stored"].as_i64().unwrap(),
        file["rows_quarantined"].as_i64().unwrap(),
        file["rows_duplicate"].as_i64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_id_is_stored_once_per_feed_whatever_brings_it_again() {
    let mut mirror = Mirror::new();
    let (a, b) = ("20150219000000", "20150219001500");
    let rows = |ids: &[i64], batch: &str| -> Vec<String> {
        ids.iter().map(|id| event_row(*id, batch, &[])).collect()
    };
    mirror.add_export(a, &rows(&[1, 2, 3], a)).await;
    // Event 3 again, from another batch, and event 5 twice in one file.
    mirror.add_export(b, &rows(&[3, 4, 5, 5], b)).await;
    // The translingual feed numbers its own events: its 1 and 2 are not the English ones.
    mirror
        .add_file(&format!("{a}.translation.export.CSV"), &rows(&[1, 2], a))
        .await;
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;

    let (status, body) = app
        .post("/api/v1/ingest/backfill?from=2015-02-19&to=2015-02-19&tables=events&feeds=english,translingual")
        .await;
    assert_eq!(status, 202, "{body}");
    let job = app.wait(body["status_url"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    // Which of a and b stores event 3 depends on which finishes first; the totals do not.
    assert_eq!(
        (
            job["rows_stored"].as_i64(),
            job["rows_duplicate"].as_i64(),
            job["rows_quarantined"].as_i64()
        ),
        (Some(5 + 2), Some(2), Some(0))
    );
    let (stored_a, _, dup_a) = file_counts(&job, &format!("{a}.export.CSV.zip"));
    let (stored_b, _, dup_b) = file_counts(&job, &format!("{b}.export.CSV.zip"));
    assert_eq!((stored_a + dup_a, stored_b + dup_b), (3, 4));
    assert!(dup_b >= 1, "b repeats event 5 within itself: {job}");
    assert_eq!(
        file_counts(&job, &format!("{a}.translation.export.CSV.zip")),
        (2, 0, 0)
    );
    let (_, found) = app.get("/api/v1/events/search?limit=500").await;
    let english: Vec<(String, i64)> = (1..=5).map(|id| ("english".into(), id)).collect();
    let translingual: Vec<(String, i64)> = (1..=2).map(|id| ("translingual".into(), id)).collect();
    assert_eq!(
        ids_by_feed(&found),
        [english.clone(), translingual.clone()].concat()
    );

    // A later batch repeats event 4 (already stored) beside a new one; another repeats only
    // stored events and so stores nothing.
    let (c, d) = ("20150220000000", "20150220001500");
    mirror.add_export(c, &rows(&[4, 6], c)).await;
    mirror.add_export(d, &rows(&[1, 2], d)).await;
    let (status, body) = app
        .post("/api/v1/ingest/backfill?from=2015-02-19&to=2015-02-20&tables=events&feeds=english")
        .await;
    assert_eq!(status, 202, "{body}");
    let job = app.wait(body["status_url"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(file_counts(&job, &format!("{c}.export.CSV.zip")), (1, 0, 1));
    assert_eq!(file_counts(&job, &format!("{d}.export.CSV.zip")), (0, 0, 2));
    let (lake, tmp) = app.lake_files();
    assert!(
        !lake.iter().any(|p| p.ends_with(&format!("{d}.parquet"))),
        "{lake:?}"
    );
    assert!(tmp.is_empty(), "{tmp:?}");
    let (_, found) = app.get("/api/v1/events/search?limit=500").await;
    let mut english = english;
    english.push(("english".into(), 6));
    assert_eq!(ids_by_feed(&found), [english, translingual].concat());
    let (_, found) = app
        .get("/api/v1/events/search?since=2015-02-20&until=2015-02-20")
        .await;
    assert_eq!(ids_by_feed(&found), vec![("english".to_owned(), 6)]);
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdelt_1_daily_and_history_files_fill_the_events_table() {
    // Needs ../shared/gdelt: its real GDELT 1.0 rows (57-field history, 58-field daily).
    let Some(shared) = shared_dir() else { return };
    let text =
        std::fs::read_to_string(shared.join("excerpts/aamend-spark-gdelt/events1.csv")).unwrap();
    let mut history = Vec::new();
    let mut daily: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.len() {
            57 => history.push(line.to_owned()),
            58 => daily
                .entry(fields[56].to_owned())
                .or_default()
                .push(line.to_owned()),
            n => panic!("{n} fields"),
        }
    }
    assert_eq!(history.len(), 40);
    assert_eq!(
        daily.keys().collect::<Vec<_>>(),
        ["20130401", "20150608", "20200702"]
    );
    let mut mirror = Mirror::new();
    mirror.add_v1("1979.zip", "1979.csv", &history).await;
    for (day, lines) in &daily {
        mirror
            .add_v1(
                &format!("{day}.export.CSV.zip"),
                &format!("{day}.export.CSV"),
                lines,
            )
            .await;
    }
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;

    let (status, body) = app
        .post("/api/v1/ingest/backfill?from=1979-01-01&to=2020-12-31&feeds=v1")
        .await;
    assert_eq!(status, 202, "{body}");
    let job = app.wait(body["status_url"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["total"], 4);
    assert_eq!(
        (
            job["rows_stored"].as_i64(),
            job["rows_quarantined"].as_i64(),
            job["rows_duplicate"].as_i64()
        ),
        (Some(100), Some(0), Some(0))
    );
    assert_eq!(file_counts(&job, "1979.zip"), (40, 0, 0));
    let (lake, _) = app.lake_files();
    let rel: Vec<&str> = lake
        .iter()
        .map(|p| p.split("/lake/").nth(1).unwrap())
        .collect();
    assert_eq!(
        rel,
        [
            "events/date=1979-01-01/19790101000000.v1.parquet",
            "events/date=2013-04-01/20130401000000.v1.parquet",
            "events/date=2015-06-08/20150608000000.v1.parquet",
            "events/date=2020-07-02/20200702000000.v1.parquet",
        ]
    );

    let (_, found) = app
        .get("/api/v1/events/search?since=1979-01-01&until=1979-12-31&limit=500")
        .await;
    assert_eq!(found["count"], 40);
    let row = found["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["GlobalEventID"] == 1)
        .unwrap();
    assert_eq!(row["feed"], "v1");
    assert_eq!(row["Day"], "1979-01-01");
    assert_eq!(row["Actor2Code"], "AGR");
    assert_eq!(row["EventCode"], "030");
    assert_eq!(row["ActionGeo_FullName"], "Nigeria");
    assert_eq!(row["ActionGeo_CountryCode"], "NI");
    assert_eq!(row["ActionGeo_ADM2Code"], Value::Null);
    assert_eq!(row["ActionGeo_FeatureID"], "0");
    assert_eq!(row["DATEADDED"], "2013-02-03T00:00:00Z");
    assert_eq!(row["SOURCEURL"], Value::Null);
    // A daily row keeps its SOURCEURL, the 58th field.
    let first_daily: Vec<&str> = daily["20130401"][0].split('\t').collect();
    let (_, found) = app
        .get("/api/v1/events/search?since=2013-04-01&until=2013-04-01&limit=500")
        .await;
    assert_eq!(found["count"], daily["20130401"].len());
    let row = found["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["GlobalEventID"] == first_daily[0].parse::<i64>().unwrap())
        .unwrap();
    assert_eq!(row["SOURCEURL"], first_daily[57]);
    assert_eq!(row["DATEADDED"], "2013-04-01T00:00:00Z");

    // Top countries over the history file equal a count over its raw rows (field 51 in 1.0).
    let mut counts: std::collections::BTreeMap<&str, i64> = Default::default();
    for line in &history {
        let code = line.split('\t').nth(51).unwrap();
        if !code.is_empty() {
            *counts.entry(code).or_default() += 1;
        }
    }
    let (_, top) = app
        .get("/api/v1/analytics/top-countries?since=1979-01-01&until=1979-12-31&limit=100")
        .await;
    let mut expected: Vec<(&str, i64)> = counts.into_iter().collect();
    expected.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
    let got: Vec<(String, i64)> = top["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["n"].as_i64().unwrap(),
            )
        })
        .collect();
    let got_sorted = {
        let mut g = got.clone();
        g.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        g
    };
    assert_eq!(got, got_sorted);
    assert_eq!(
        got,
        expected
            .iter()
            .map(|(k, n)| ((*k).to_owned(), *n))
            .collect::<Vec<_>>()
    );

    // Coverage: one file a day since 2013-04-01; the index lists none for 2013-04-02.
    let (_, cov) = app
        .get("/api/v1/ingest/coverage?since=2013-03-31&until=2013-04-02&feed=v1")
        .await;
    assert_eq!(
        cov["days"],
        json!([
            {"date": "2013-03-31", "slots": 0, "expected": 0, "ingested": 0, "failed": 0, "pending": 0,
             "missing_upstream": 0, "rows_stored": 0, "rows_quarantined": 0, "expired": 0},
            {"date": "2013-04-01", "slots": 1, "expected": 1, "ingested": 1, "failed": 0, "pending": 0,
             "missing_upstream": 0, "rows_stored": daily["20130401"].len(), "rows_quarantined": 0, "expired": 0},
            {"date": "2013-04-02", "slots": 1, "expected": 0, "ingested": 0, "failed": 0, "pending": 0,
             "missing_upstream": 1, "rows_stored": 0, "rows_quarantined": 0, "expired": 0},
        ])
    );
    // Running it again stores nothing twice.
    let (_, body) = app
        .post("/api/v1/ingest/backfill?from=1979-01-01&to=2020-12-31&feeds=v1")
        .await;
    let job = app.wait(body["status_url"].as_str().unwrap()).await;
    assert_eq!(job["rows_stored"], 0, "{job}");
    let (status, body) = app
        .post("/api/v1/ingest/backfill?from=1978-12-31&to=1979-01-01&feeds=v1")
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "from (1978-12-31) is before GDELT 1.0 began (1979-01-01)"
    );
    app.stop().await;
    server.stop().await;
}
