//! Trigger → job → search and analytics with exact expected values, over generated batches.

use serde_json::{json, Value};

use crate::support::{event_row, Mirror, MirrorServer, TestApp};

const B1: &str = "20150218231500";
const B2: &str = "20150219000000";
const B3: &str = "20150220101500";

/// Three batches over three days; one malformed line in B2.
pub async fn sample_mirror() -> Mirror {
    let mut mirror = Mirror::new();
    mirror
        .add_export(
            B1,
            &[
                event_row(
                    1,
                    B1,
                    &[
                        ("EventCode", "010"),
                        ("ActionGeo_CountryCode", "US"),
                        ("AvgTone", "-2.5"),
                    ],
                ),
                event_row(
                    2,
                    B1,
                    &[
                        ("EventCode", "010"),
                        ("ActionGeo_CountryCode", "UP"),
                        ("AvgTone", "1.5"),
                        ("Actor1Name", "Kyiv Protesters"),
                        ("ActionGeo_FullName", "Kyiv, Kyyiv, Misto, Ukraine"),
                    ],
                ),
                event_row(
                    3,
                    B1,
                    &[
                        ("EventCode", "04"),
                        ("EventBaseCode", "04"),
                        ("EventRootCode", "04"),
                        ("ActionGeo_CountryCode", "US"),
                        ("AvgTone", "3.0"),
                        ("Actor2Name", "Quote\"Inside"),
                    ],
                ),
            ],
        )
        .await;
    mirror
        .add_export(
            B2,
            &[
                event_row(
                    4,
                    B2,
                    &[
                        ("EventCode", "0211"),
                        ("ActionGeo_CountryCode", "CH"),
                        ("AvgTone", "-4.0"),
                        ("SOURCEURL", "https://news.example.org/KYIV-talks"),
                        ("Actor1CountryCode", "CHN"),
                        ("Day", "20150218"),
                        ("GoldsteinScale", "-2.0"),
                        ("NumMentions", "9"),
                        ("NumSources", "3"),
                        ("NumArticles", "5"),
                        ("ActionGeo_Lat", "39.9"),
                        ("ActionGeo_Long", "116.4"),
                    ],
                ),
                // 60 fields: quarantined as line 2.
                event_row(5, B2, &[])
                    .rsplit_once('\t')
                    .unwrap()
                    .0
                    .to_owned(),
                event_row(
                    6,
                    B2,
                    &[
                        ("EventCode", "010"),
                        ("ActionGeo_CountryCode", ""),
                        ("AvgTone", "2.0"),
                    ],
                ),
            ],
        )
        .await;
    mirror
        .add_export(
            B3,
            &[event_row(
                7,
                B3,
                &[
                    ("EventCode", "190"),
                    ("ActionGeo_CountryCode", "UK"),
                    ("AvgTone", "-10.0"),
                    ("ActionGeo_FullName", "Zürich, Zurich, Switzerland"),
                    ("Actor2CountryCode", "GBR"),
                    ("Day", "20150220"),
                    ("GoldsteinScale", "-10.0"),
                    ("NumSources", "2"),
                ],
            )],
        )
        .await;
    mirror
}

fn keys(rows: &Value) -> Vec<(String, i64)> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["n"].as_i64().unwrap(),
            )
        })
        .collect()
}

pub fn ids(body: &Value) -> Vec<i64> {
    body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["GlobalEventID"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_ingests_and_every_endpoint_answers_exactly() {
    let mirror = sample_mirror().await;
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;

    let job = app.ingest(3).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "latest");
    assert_eq!(job["params"], json!({"n_batches": 3}));
    assert_eq!(
        (job["total"].as_i64(), job["finished"].as_i64()),
        (Some(3), Some(3))
    );
    let mut files: Vec<(String, String, i64, i64)> = job["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap().to_owned(),
                f["outcome"].as_str().unwrap().to_owned(),
                f["rows_stored"].as_i64().unwrap(),
                f["rows_quarantined"].as_i64().unwrap(),
            )
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            (format!("{B1}.export.CSV.zip"), "ingested".into(), 3, 0),
            (format!("{B2}.export.CSV.zip"), "ingested".into(), 2, 1),
            (format!("{B3}.export.CSV.zip"), "ingested".into(), 1, 0),
        ]
    );

    // The malformed line is kept aside with its line number and raw text.
    let quarantined = app
        .engine
        .catalog
        .quarantined(&format!("{B2}.export.CSV.zip"))
        .unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].0, 2);
    assert_eq!(quarantined[0].1, "expected 61 fields, found 60");
    assert!(quarantined[0].2.starts_with(b"5\t20150217\t"));

    // Hive-partitioned by batch date, one file per batch, nothing left in tmp.
    let (lake, tmp) = app.lake_files();
    let rel: Vec<String> = lake
        .iter()
        .map(|p| p.split("/lake/").nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(
        rel,
        vec![
            format!("events/date=2015-02-18/{B1}.parquet"),
            format!("events/date=2015-02-19/{B2}.parquet"),
            format!("events/date=2015-02-20/{B3}.parquet"),
        ]
    );
    assert!(tmp.is_empty(), "{tmp:?}");

    // Search: case-insensitive over names, geo names and SOURCEURL; newest batch first.
    let (status, body) = app.get("/api/v1/events/search?query=kyiv").await;
    assert_eq!(status, 200);
    assert_eq!(body["count"], 2);
    assert_eq!(ids(&body), vec![4, 2]);
    let row = &body["rows"][1];
    assert_eq!(row["Actor1Name"], "Kyiv Protesters");
    assert_eq!(row["EventCode"], "010");
    assert_eq!(row["Day"], "2015-02-17");
    assert_eq!(row["DATEADDED"], "2015-02-18T23:15:00Z");
    assert_eq!(row["AvgTone"], 1.5);
    assert_eq!(row["IsRootEvent"], true);
    assert_eq!(row["ActionGeo_Lat"], 40.7143);
    assert_eq!(row["Actor1Geo_FeatureID"], "US");
    assert_eq!(row["Actor2Geo_Type"], 0);
    assert_eq!(row["Actor1KnownGroupCode"], Value::Null);
    assert_eq!(row["feed"], "english");
    assert_eq!(row.as_object().unwrap().len(), 62);
    let (_, body) = app.get("/api/v1/events/search?query=ZÜRICH").await;
    assert_eq!(ids(&body), vec![7]);
    let (_, body) = app.get("/api/v1/events/search?query=quote%22inside").await;
    assert_eq!(ids(&body), vec![3]);
    assert_eq!(body["rows"][0]["Actor2Name"], "Quote\"Inside");
    // since/until are inclusive batch dates; limit caps the rows.
    let (_, body) = app
        .get("/api/v1/events/search?since=2015-02-19&until=2015-02-19")
        .await;
    assert_eq!(ids(&body), vec![6, 4]);
    let (_, body) = app.get("/api/v1/events/search?limit=2").await;
    assert_eq!(ids(&body), vec![7, 6]);
    let (_, mut body) = app.get("/api/v1/events/search?query=nowhere-at-all").await;
    let freshness = body.as_object_mut().unwrap().remove("freshness").unwrap();
    assert_eq!(body, json!({"count": 0, "rows": []}));
    // Every answer says how fresh the lake is and what it read.
    assert_eq!(freshness["newest_batch"], "2015-02-20T10:15:00Z");
    assert_eq!(
        (
            freshness["partitions_read"].as_i64(),
            freshness["files_read"].as_i64()
        ),
        (Some(3), Some(3))
    );
    assert!(freshness["age_seconds"].as_i64().unwrap() > 300_000_000);

    // Analytics: codes keep their zeros; countries are FIPS, empty excluded; ties by key.
    let (status, body) = app.get("/api/v1/analytics/top-event-codes").await;
    assert_eq!(status, 200);
    assert_eq!(body["field"], "EventCode");
    assert_eq!(body["code_system"], "CAMEO event");
    assert_eq!(
        keys(&body["rows"]),
        vec![
            ("010".into(), 3),
            ("0211".into(), 1),
            ("04".into(), 1),
            ("190".into(), 1)
        ]
    );
    let (_, body) = app
        .get("/api/v1/analytics/top-event-codes?limit=1&since=2015-02-19")
        .await;
    assert_eq!(keys(&body["rows"]), vec![("010".into(), 1)]);
    let (_, body) = app.get("/api/v1/analytics/top-countries").await;
    assert_eq!(body["field"], "ActionGeo_CountryCode");
    assert_eq!(body["code_system"], "FIPS 10-4");
    assert_eq!(
        keys(&body["rows"]),
        vec![
            ("US".into(), 2),
            ("CH".into(), 1),
            ("UK".into(), 1),
            ("UP".into(), 1)
        ]
    );
    let (_, body) = app
        .get("/api/v1/analytics/top-countries?until=2015-02-18")
        .await;
    assert_eq!(
        keys(&body["rows"]),
        vec![("US".into(), 2), ("UP".into(), 1)]
    );
    let (_, mut body) = app.get("/api/v1/analytics/tone").await;
    body.as_object_mut().unwrap().remove("freshness").unwrap();
    assert_eq!(
        body,
        json!({"available": true, "n": 6, "avg_tone": -10.0 / 6.0, "min_tone": -10.0, "max_tone": 3.0})
    );
    let (_, mut body) = app.get("/api/v1/analytics/tone?since=2015-02-21").await;
    let freshness = body.as_object_mut().unwrap().remove("freshness").unwrap();
    assert_eq!(
        body,
        json!({"available": false, "n": 0, "avg_tone": null, "min_tone": null, "max_tone": null})
    );
    assert_eq!(
        (
            freshness["partitions_read"].as_i64(),
            freshness["files_read"].as_i64()
        ),
        (Some(0), Some(0))
    );

    // Re-triggering stores nothing twice and downloads nothing again.
    let zip_hits = server.hits(&format!("{B1}.export.CSV.zip"));
    assert_eq!(zip_hits, 1);
    let again = app.ingest(3).await;
    assert_eq!(again["state"], "succeeded");
    let outcomes: Vec<&str> = again["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, vec!["already_ingested"; 3]);
    assert_eq!(server.hits(&format!("{B1}.export.CSV.zip")), 1);
    let (_, body) = app.get("/api/v1/analytics/tone").await;
    assert_eq!(body["n"], 6);
    let (_, health) = app.get("/health").await;
    // Batches from 2015 are stale, and no mentions were published by this mirror.
    assert_eq!(health["status"], "degraded");
    let reasons: Vec<&str> = health["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].starts_with("events: newest batch is "),
        "{reasons:?}"
    );
    assert!(
        reasons[0].ends_with(" minutes old (ingest.stale_after_minutes = 60)"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1], "mentions: no batch stored yet");
    assert_eq!(health["tables"][0]["newest_batch"], B3);
    assert_eq!(health["lake"]["files_ingested"], 3);
    assert_eq!(health["lake"]["rows_stored"], 6);
    assert_eq!(health["lake"]["rows_quarantined"], 1);
    assert_eq!(health["lake"]["newest_batch"], B3);

    // Metrics: route templates, ingestion counters, newest batch time.
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
        metrics.contains("gdelt_lake_ingest_rows_total{table=\"events\"} 6"),
        "{metrics}"
    );
    assert!(metrics.contains("gdelt_lake_ingest_quarantined_rows_total{table=\"events\"} 1"));
    assert!(
        metrics.contains("gdelt_lake_ingest_files_total{outcome=\"ingested\",table=\"events\"} 3")
    );
    assert!(metrics.contains(
        "gdelt_lake_ingest_files_total{outcome=\"already_ingested\",table=\"events\"} 3"
    ));
    assert!(metrics.contains(
        "gdelt_lake_ingest_last_success_batch_timestamp_seconds{table=\"events\"} 1424427300"
    ));
    assert!(metrics.contains(
        "gdelt_lake_http_requests_total{method=\"GET\",route=\"/api/v1/ingest/jobs/{id}\",status=\"200\"}"
    ));

    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_newest_batches_are_taken_and_a_restart_keeps_the_lake() {
    let mirror = sample_mirror().await;
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;
    let job = app.ingest(1).await;
    let files: Vec<&str> = job["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, vec![format!("{B3}.export.CSV.zip")]);
    // n=1 reads lastupdate.txt, not the master list.
    assert_eq!(
        (
            server.hits("lastupdate.txt"),
            server.hits("masterfilelist.txt")
        ),
        (1, 0)
    );
    let job = app.ingest(2).await;
    let outcomes: Vec<(&str, &str)> = job["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["file"].as_str().unwrap(), f["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.contains(&("20150219000000.export.CSV.zip", "ingested")));
    assert!(outcomes.contains(&("20150220101500.export.CSV.zip", "already_ingested")));
    assert_eq!(server.hits("masterfilelist.txt"), 1);
    let data_dir = app.stop().await;

    // A new process over the same data directory serves the same lake.
    let config = crate::support::test_config(data_dir.path(), &server.base_url);
    let app = TestApp::start_with(config, data_dir).await;
    let (_, body) = app.get("/api/v1/analytics/tone").await;
    assert_eq!(body["n"], 3);
    let (_, job) = app.get("/api/v1/ingest/jobs/2").await;
    assert_eq!(job["state"], "succeeded");
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_lake_answers_empty_results() {
    let mirror = Mirror::new();
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;
    let empty =
        json!({"newest_batch": null, "age_seconds": null, "partitions_read": 0, "files_read": 0});
    assert_eq!(
        app.get("/api/v1/events/search?query=x").await,
        (200, json!({"count": 0, "rows": [], "freshness": empty}))
    );
    assert_eq!(
        app.get("/api/v1/analytics/top-event-codes").await,
        (
            200,
            json!({"field": "EventCode", "code_system": "CAMEO event", "rows": [], "freshness": empty})
        )
    );
    assert_eq!(
        app.get("/api/v1/analytics/top-countries").await,
        (
            200,
            json!({"field": "ActionGeo_CountryCode", "code_system": "FIPS 10-4", "rows": [], "freshness": empty})
        )
    );
    assert_eq!(
        app.get("/api/v1/analytics/tone").await,
        (
            200,
            json!({"available": false, "n": 0, "avg_tone": null, "min_tone": null, "max_tone": null, "freshness": empty})
        )
    );
    assert_eq!(
        app.get("/api/v1/events").await,
        (
            200,
            json!({"count": 0, "total": null, "next_cursor": null, "rows": [], "freshness": empty})
        )
    );
    assert_eq!(
        app.get("/api/v1/analytics/timeseries").await,
        (
            200,
            json!({"bucket": "day", "count": "events", "rows": [], "freshness": empty})
        )
    );
    let (status, health) = app.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "degraded");
    assert_eq!(
        health["reasons"],
        json!([
            "events: no batch stored yet",
            "mentions: no batch stored yet"
        ])
    );
    assert_eq!(health["lake"]["files_ingested"], 0);
    assert_eq!(health["lake"]["newest_batch"], Value::Null);
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_answer_400_naming_the_parameter() {
    let mirror = Mirror::new();
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;
    let cases = [
        (
            "/api/v1/events/search?limit=0",
            "limit",
            "limit must be an integer from 1 to 500, got \"0\"",
        ),
        (
            "/api/v1/events/search?limit=501",
            "limit",
            "limit must be an integer from 1 to 500, got \"501\"",
        ),
        (
            "/api/v1/events/search?limit=ten",
            "limit",
            "limit must be an integer from 1 to 500, got \"ten\"",
        ),
        (
            "/api/v1/events/search?since=yesterday",
            "since",
            "since must be a date as YYYY-MM-DD, got \"yesterday\"",
        ),
        (
            "/api/v1/analytics/top-event-codes?until=2015-13-01",
            "until",
            "until must be a date as YYYY-MM-DD, got \"2015-13-01\"",
        ),
        (
            "/api/v1/analytics/top-countries?since=2015-02-20&until=2015-02-19",
            "since",
            "since (2015-02-20) is after until (2015-02-19)",
        ),
        (
            "/api/v1/analytics/tone?since=2015-02-18%27%3B%20DROP%20TABLE%20x",
            "since",
            "since must be a date as YYYY-MM-DD, got \"2015-02-18'; DROP TABLE x\"",
        ),
        (
            "/api/v1/ingest/jobs/abc",
            "id",
            "id must be an integer, got \"abc\"",
        ),
    ];
    for (path, parameter, message) in cases {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(
            body,
            json!({"code": "invalid_parameter", "message": message, "parameter": parameter}),
            "{path}"
        );
    }
    let (status, body) = app.post("/api/v1/ingest/trigger?n_batches=0").await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"code": "invalid_parameter", "message": "n_batches must be an integer from 1 to 1000, got \"0\"", "parameter": "n_batches"})
    );
    let (status, body) = app.get("/api/v1/ingest/jobs/999").await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"code": "not_found", "message": "no job with id 999"})
        )
    );
    let (status, body) = app.get("/api/v1/nope").await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"code": "not_found", "message": "no route for GET /api/v1/nope"})
        )
    );
    // A misspelt filter is refused rather than ignored (which would widen the answer).
    let (status, body) = app.get("/api/v1/tone-typo").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .get("/api/v1/analytics/tone?acton_country=UP&since=2015-02-18")
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({
                "code": "invalid_parameter",
                "message": "unknown parameter \"acton_country\" for GET /api/v1/analytics/tone; accepted: since, until, day_from, day_to, actor1_country, actor2_country, action_country, event_code, event_base, event_root, quad_class, goldstein_min, goldstein_max, tone_min, tone_max, bbox, query, feed",
                "parameter": "acton_country"
            })
        )
    );
    let (status, body) = app.get("/health?verbose=1").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"],
        "unknown parameter \"verbose\" for GET /health; accepted: none"
    );
    // A known route with another method: 405 naming what it takes.
    let response = app
        .client
        .get(format!("{}/api/v1/ingest/trigger", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    assert_eq!(
        serde_json::from_slice::<Value>(&response.bytes().await.unwrap()).unwrap(),
        json!({
            "code": "method_not_allowed",
            "message": "GET is not accepted on /api/v1/ingest/trigger; accepted: POST"
        })
    );
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_swagger_ui_are_served() {
    let mirror = Mirror::new();
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        vec![
            "/api/v1/analytics/timeseries",
            "/api/v1/analytics/tone",
            "/api/v1/analytics/top",
            "/api/v1/analytics/top-countries",
            "/api/v1/analytics/top-event-codes",
            "/api/v1/events",
            "/api/v1/events/search",
            "/api/v1/gkg",
            "/api/v1/ingest/backfill",
            "/api/v1/ingest/coverage",
            "/api/v1/ingest/jobs/{id}",
            "/api/v1/ingest/trigger",
            "/api/v1/lake/compact",
            "/api/v1/mentions",
            "/health",
            "/metrics",
        ]
    );
    let limit = doc["paths"]["/api/v1/events/search"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap()
        .clone();
    assert_eq!(limit["schema"]["maximum"], 500);
    let busy = &doc["paths"]["/api/v1/ingest/trigger"]["post"]["responses"]["503"];
    assert!(busy["headers"]["Retry-After"].is_object(), "{busy}");
    // Every query answers 200, 400 for a bad parameter, 422 when too large or too slow, and
    // 503 with Retry-After when every connection is busy.
    for path in [
        "/api/v1/analytics/timeseries",
        "/api/v1/analytics/tone",
        "/api/v1/analytics/top",
        "/api/v1/analytics/top-countries",
        "/api/v1/analytics/top-event-codes",
        "/api/v1/events",
        "/api/v1/events/search",
        "/api/v1/gkg",
        "/api/v1/mentions",
    ] {
        let responses = &doc["paths"][path]["get"]["responses"];
        let mut codes: Vec<&str> = responses
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        codes.sort_unstable();
        assert_eq!(codes, ["200", "400", "422", "500", "503"], "{path}");
        assert!(
            responses["503"]["headers"]["Retry-After"].is_object(),
            "{path}"
        );
        assert_eq!(
            responses["422"]["content"]["application/json"]["example"]["code"], "query_too_large",
            "{path}"
        );
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status().as_u16(), 308);
    assert_eq!(redirect.headers()["location"], "/docs/");
    let page = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    let init = app
        .client
        .get(format!("{}/docs/swagger-initializer.js", app.base))
        .send()
        .await
        .unwrap();
    assert!(init.text().await.unwrap().contains("/openapi.json"));
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_ingests_and_overlapping_runs_store_each_batch_once() {
    let mirror = sample_mirror().await;
    let server = MirrorServer::start(mirror.dir.path());
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::test_config(data_dir.path(), &server.base_url);
    // Every second, two batches per run: runs overlap while the first is still working.
    config.ingest.scheduler_enabled = true;
    config.ingest.schedule = "* * * * * *".into();
    config.ingest.batches_per_run = 2;
    let app = TestApp::start_with(config, data_dir).await;
    let mut jobs = Vec::new();
    for id in 1..=3 {
        let mut job = Value::Null;
        for _ in 0..200 {
            let (status, body) = app.get(&format!("/api/v1/ingest/jobs/{id}")).await;
            if status == 200 && (body["state"] == "succeeded" || body["state"] == "failed") {
                job = body;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(job["state"], "succeeded", "job {id}: {job}");
        assert_eq!(job["kind"], "latest");
        jobs.push(job);
    }
    let ingested: Vec<String> = jobs
        .iter()
        .flat_map(|j| j["files"].as_array().unwrap().clone())
        .filter(|f| f["outcome"] == "ingested")
        .map(|f| f["file"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = ingested.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            format!("{B2}.export.CSV.zip"),
            format!("{B3}.export.CSV.zip")
        ]
    );
    assert_eq!(server.hits(&format!("{B2}.export.CSV.zip")), 1);
    let (_, tone) = app.get("/api/v1/analytics/tone").await;
    assert_eq!(tone["n"], 3);
    app.stop().await;
    server.stop().await;
}
