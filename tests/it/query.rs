//! The query API beyond the original contract: combined filters, keyset pages, projections,
//! top-N over any dimension, time series, labels, freshness and limits, with exact values over
//! the generated sample batches of `api.rs`.

use serde_json::{json, Value};

use crate::api::{ids, sample_mirror};
use crate::support::{event_row, Mirror, MirrorServer, TestApp};

async fn ingested() -> (Mirror, MirrorServer, TestApp) {
    let mirror = sample_mirror().await;
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;
    let job = app.ingest(3).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    (mirror, server, app)
}

fn rows(body: &Value) -> Vec<(String, Value, i64)> {
    body["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["label"].clone(),
                r["n"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_combine_and_pages_walk_the_whole_order_once() {
    let (_mirror, server, app) = ingested().await;
    // The sample: B1 (2015-02-18 23:15) has 1, 2, 3; B2 (02-19 00:00) has 4 and 6; B3
    // (02-20 10:15) has 7. Newest batch first, then feed and id, descending.
    let cases: &[(&str, &[i64])] = &[
        ("", &[7, 6, 4, 3, 2, 1]),
        ("?action_country=US", &[3, 1]),
        ("?action_country=us,uk", &[7, 3, 1]),
        ("?event_code=01", &[6, 2, 1]),
        ("?event_code=04,19", &[7, 3]),
        ("?event_root=04", &[3]),
        ("?tone_max=-3", &[7, 4]),
        ("?tone_min=-3&tone_max=2", &[6, 2, 1]),
        ("?query=KYIV&action_country=CH", &[4]),
        ("?since=2015-02-19", &[7, 6, 4]),
        ("?until=2015-02-18&quad_class=1", &[3, 2, 1]),
        ("?quad_class=2,3", &[]),
        // Event 4 is Actor1 CHN, Goldstein -2, Day 02-18, NumSources 3, in Beijing; event 7
        // has Actor2 GBR, Goldstein -10, Day 02-20.
        ("?actor1_country=USA", &[7, 6, 3, 2, 1]),
        ("?actor1_country=CHN,RUS", &[4]),
        (
            "?actor1_country=USA&goldstein_min=0&goldstein_max=0",
            &[6, 3, 2, 1],
        ),
        ("?goldstein_max=-1", &[7, 4]),
        ("?goldstein_min=-5&goldstein_max=-1", &[4]),
        ("?actor2_country=GOV", &[]),
        ("?actor2_country=GBR", &[7]),
        ("?day_from=2015-02-17&day_to=2015-02-17", &[6, 3, 2, 1]),
        ("?day_from=2015-02-18", &[7, 4]),
        ("?day_to=2015-02-18", &[6, 4, 3, 2, 1]),
        ("?day_from=2015-02-21", &[]),
        ("?event_base=04", &[3]),
        ("?event_base=01,04", &[7, 6, 4, 3, 2, 1]),
        ("?bbox=-75,40,-73,41", &[7, 6, 3, 2, 1]),
        ("?bbox=110,35,120,45", &[4]),
        ("?bbox=0,0,1,1", &[]),
        ("?feed=english", &[7, 6, 4, 3, 2, 1]),
        ("?feed=translingual,v1", &[]),
        ("?sort=dateadded", &[1, 2, 3, 4, 6, 7]),
        ("?sort=-day&event_code=01", &[6, 2, 1]),
        ("?sort=day", &[1, 2, 3, 6, 4, 7]),
        ("?sort=-day", &[7, 4, 6, 3, 2, 1]),
    ];
    for (query, expected) in cases {
        let (status, body) = app.get(&format!("/api/v1/events{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(ids(&body), *expected, "{query}");
        assert_eq!(body["next_cursor"], Value::Null, "{query}");
    }

    // Pages of two, with a projection and the total: every row once, in order.
    let mut seen = Vec::new();
    let mut url = "/api/v1/events?limit=2&fields=GlobalEventID,AvgTone&total=true".to_owned();
    let mut pages = 0;
    loop {
        let (status, body) = app.get(&url).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total"], 6);
        pages += 1;
        for row in body["rows"].as_array().unwrap() {
            let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["AvgTone", "GlobalEventID"]);
            seen.push(row["GlobalEventID"].as_i64().unwrap());
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => {
                url = format!(
                    "/api/v1/events?limit=2&fields=GlobalEventID,AvgTone&total=true&cursor={cursor}"
                )
            }
            None => break,
        }
    }
    assert_eq!((seen, pages), (vec![7, 6, 4, 3, 2, 1], 3));

    // A cursor is refused with other filters, and when altered.
    let (_, first) = app.get("/api/v1/events?limit=2").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get(&format!("/api/v1/events?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(ids(&second), vec![4, 3]);
    let (status, body) = app
        .get(&format!(
            "/api/v1/events?limit=2&sort=dateadded&cursor={cursor}"
        ))
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"code": "invalid_parameter", "parameter": "cursor",
                   "message": "cursor belongs to other filters or another sort; start again without a cursor"})
        )
    );
    let mut altered = cursor.to_owned();
    altered.insert(3, 'x');
    let (status, body) = app
        .get(&format!("/api/v1/events?limit=2&cursor={altered}"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "cursor is not one this server issued (altered or truncated)"
    );

    // Bad parameters name themselves.
    for (query, parameter, message) in [
        ("fields=GlobalEventId", "fields", "fields: \"GlobalEventId\" is not a column of the events table (names are case-sensitive, as GDELT spells them)"),
        ("sort=tone", "sort", "sort must be one of -dateadded, dateadded, -day, day, got \"tone\""),
        ("limit=1001", "limit", "limit must be an integer from 1 to 1000, got \"1001\""),
        ("event_code=4a", "event_code", "event_code must be CAMEO code prefixes of 1 to 4 digits, got \"4a\""),
        ("actor1_country=US", "actor1_country", "actor1_country must be CAMEO country codes of 3 letters, got \"US\""),
        ("bbox=0,0,200,1", "bbox", "bbox must be min_lon,min_lat,max_lon,max_lat (longitudes within -180..180, latitudes within -90..90), got \"0,0,200,1\""),
        ("day_from=2015-02-19&day_to=2015-02-18", "day_from", "day_from (2015-02-19) is after day_to (2015-02-18)"),
        ("feed=french", "feed", "feed: \"french\" is not a feed; accepted: english, translingual, v1"),
        ("total=yes", "total", "total must be one of true, false, got \"yes\""),
    ] {
        let (status, body) = app.get(&format!("/api/v1/events?{query}")).await;
        assert_eq!(
            (status, body),
            (
                400,
                json!({"code": "invalid_parameter", "parameter": parameter, "message": message})
            ),
            "{query}"
        );
    }
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_n_over_any_dimension_and_time_series_with_labels() {
    let (_mirror, server, app) = ingested().await;
    let (status, body) = app.get("/api/v1/analytics/top?dimension=event_root").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            &body["dimension"],
            &body["field"],
            &body["code_system"],
            &body["count"]
        ),
        (
            &json!("event_root"),
            &json!("EventRootCode"),
            &json!("CAMEO event"),
            &json!("events")
        )
    );
    assert_eq!(
        rows(&body),
        vec![
            ("01".into(), json!("Make public statement"), 5),
            ("04".into(), json!("Consult"), 1)
        ]
    );
    // NumMentions/NumArticles/NumSources are 4/4/1 but for event 4 (9/5/3) and event 7
    // (NumSources 2).
    let (_, body) = app
        .get("/api/v1/analytics/top?dimension=event_root&count=mentions&since=2015-02-19")
        .await;
    assert_eq!(
        rows(&body),
        vec![("01".into(), json!("Make public statement"), 17)]
    );
    for (count, root01, root04) in [("articles", 21, 4), ("sources", 8, 1), ("events", 5, 1)] {
        let (_, body) = app
            .get(&format!(
                "/api/v1/analytics/top?dimension=event_root&count={count}"
            ))
            .await;
        assert_eq!(body["count"], count);
        assert_eq!(
            rows(&body),
            vec![
                ("01".into(), json!("Make public statement"), root01),
                ("04".into(), json!("Consult"), root04)
            ],
            "{count}"
        );
    }
    let (_, body) = app
        .get("/api/v1/analytics/top?dimension=actor2_country")
        .await;
    assert_eq!(body["code_system"], "CAMEO country");
    assert_eq!(
        rows(&body),
        vec![("GBR".into(), json!("United Kingdom"), 1)]
    );
    let (_, body) = app
        .get("/api/v1/analytics/top?dimension=event_base&limit=1")
        .await;
    assert_eq!(
        rows(&body),
        vec![(
            "010".into(),
            json!("Make statement, not specified below"),
            5
        )]
    );
    let (_, body) = app
        .get("/api/v1/analytics/top?dimension=event_code&limit=2")
        .await;
    assert_eq!(
        rows(&body),
        vec![
            (
                "010".into(),
                json!("Make statement, not specified below"),
                3
            ),
            // Ties by key.
            ("0211".into(), json!("Appeal for economic cooperation"), 1)
        ]
    );
    let (_, body) = app.get("/api/v1/analytics/top?dimension=quad_class").await;
    assert_eq!(
        rows(&body),
        vec![("1".into(), json!("Verbal Cooperation"), 6)]
    );
    let (_, body) = app
        .get("/api/v1/analytics/top?dimension=source_domain")
        .await;
    assert_eq!(body["code_system"], Value::Null);
    assert_eq!(
        rows(&body),
        vec![
            ("example.com".into(), Value::Null, 5),
            ("news.example.org".into(), Value::Null, 1)
        ]
    );
    let (_, body) = app
        .get("/api/v1/analytics/top?dimension=actor1_country&action_country=US")
        .await;
    assert_eq!(body["code_system"], "CAMEO country");
    assert_eq!(rows(&body), vec![("USA".into(), json!("United States"), 2)]);
    let (_, body) = app
        .get("/api/v1/analytics/top?dimension=action_country&limit=2")
        .await;
    assert_eq!(body["code_system"], "FIPS 10-4");
    assert_eq!(
        rows(&body),
        vec![
            ("US".into(), json!("United States"), 2),
            ("CH".into(), json!("China"), 1)
        ]
    );
    // The original endpoints take the same filters.
    let (_, body) = app
        .get("/api/v1/analytics/top-event-codes?action_country=US")
        .await;
    assert_eq!(
        body["rows"],
        json!([
            {"key": "010", "label": "Make statement, not specified below", "n": 1},
            {"key": "04", "label": "Consult", "n": 1}
        ])
    );
    let (status, body) = app.get("/api/v1/analytics/top?dimension=color").await;
    assert_eq!(status, 400);
    assert_eq!(body["parameter"], "dimension");

    let series = |body: &Value| -> Vec<(String, i64, i64, f64)> {
        body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["bucket"].as_str().unwrap().to_owned(),
                    r["n"].as_i64().unwrap(),
                    r["events"].as_i64().unwrap(),
                    r["avg_tone"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (status, body) = app.get("/api/v1/analytics/timeseries").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["bucket"], &body["count"]),
        (&json!("day"), &json!("events"))
    );
    assert_eq!(
        series(&body),
        vec![
            (
                "2015-02-18T00:00:00Z".into(),
                3,
                3,
                (-2.5 + 1.5 + 3.0) / 3.0
            ),
            ("2015-02-19T00:00:00Z".into(), 2, 2, (-4.0 + 2.0) / 2.0),
            ("2015-02-20T00:00:00Z".into(), 1, 1, -10.0),
        ]
    );
    let (_, body) = app
        .get("/api/v1/analytics/timeseries?bucket=15min&count=articles&action_country=US,CH,UK")
        .await;
    assert_eq!(
        series(&body),
        vec![
            ("2015-02-18T23:15:00Z".into(), 8, 2, (-2.5 + 3.0) / 2.0),
            ("2015-02-19T00:00:00Z".into(), 5, 1, -4.0),
            ("2015-02-20T10:15:00Z".into(), 4, 1, -10.0),
        ]
    );
    let (_, body) = app
        .get("/api/v1/analytics/timeseries?bucket=hour&since=2015-02-20")
        .await;
    assert_eq!(
        series(&body),
        vec![("2015-02-20T10:00:00Z".into(), 1, 1, -10.0)]
    );
    let (_, body) = app.get("/api/v1/analytics/timeseries?bucket=month").await;
    assert_eq!(series(&body)[0].0, "2015-02-01T00:00:00Z");
    assert_eq!(body["freshness"]["files_read"], 3);
    let (_, body) = app.get("/api/v1/analytics/timeseries?bucket=week").await;
    // 2015-02-16 was a Monday.
    assert_eq!(
        series(&body)
            .into_iter()
            .map(|p| (p.0, p.1))
            .collect::<Vec<_>>(),
        vec![("2015-02-16T00:00:00Z".to_owned(), 6)]
    );
    let (status, body) = app.get("/api/v1/analytics/timeseries?bucket=year").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            400,
            Some("bucket must be one of 15min, hour, day, week, month, got \"year\"")
        )
    );
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_too_many_files_answers_422_with_a_hint() {
    let mirror = sample_mirror().await;
    let server = MirrorServer::start(mirror.dir.path());
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::test_config(data_dir.path(), &server.base_url);
    config.query.max_scan_files = 2;
    let app = TestApp::start_with(config, data_dir).await;
    app.ingest(3).await;
    let (status, body) = app.get("/api/v1/events").await;
    assert_eq!(
        (status, body),
        (
            422,
            json!({"code": "query_too_large",
                   "message": "the query would read 3 Parquet files, more than query.max_scan_files (2); narrow since/until"})
        )
    );
    let (status, body) = app.get("/api/v1/analytics/tone?since=2015-02-19").await;
    assert_eq!((status, body["n"].as_i64()), (200, Some(3)));
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_stream_every_match_in_each_format_read_back_by_real_readers() {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Int64Type};

    let (_mirror, server, app) = ingested().await;
    let fetch = |query: &'static str, accept: &'static str| {
        let request = app
            .client
            .get(format!("{}/api/v1/events?{query}", app.base))
            .header("Accept", accept);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            let files = response
                .headers()
                .get("x-files-read")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, content_type, files, response.bytes().await.unwrap())
        }
    };
    let text = |batch: &arrow::record_batch::RecordBatch, name: &str| -> Vec<String> {
        let column =
            arrow::compute::cast(batch.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
        let column = column.as_string::<i32>();
        (0..column.len())
            .map(|i| column.value(i).to_owned())
            .collect()
    };

    // NDJSON: one object per line, in the page order.
    let (status, content_type, files, body) = fetch(
        "format=ndjson&fields=GlobalEventID,EventCode,Day,DATEADDED,Actor1KnownGroupCode",
        "*/*",
    )
    .await;
    assert_eq!(
        (status, content_type.as_str(), files.as_deref()),
        (200, "application/x-ndjson", Some("3"))
    );
    let lines: Vec<Value> = std::str::from_utf8(&body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<i64> = lines
        .iter()
        .map(|l| l["GlobalEventID"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![7, 6, 4, 3, 2, 1]);
    assert_eq!(lines[0]["EventCode"], "190");
    assert_eq!(lines[0]["Day"], "2015-02-20");
    // The same values as the JSON answer: ISO 8601 UTC, and nulls written out.
    assert_eq!(lines[0]["DATEADDED"], "2015-02-20T10:15:00Z");
    assert_eq!(
        lines[0].as_object().unwrap().get("Actor1KnownGroupCode"),
        Some(&Value::Null)
    );

    // CSV by Accept header, read back with arrow's CSV reader.
    let (status, content_type, _, body) = fetch(
        "fields=GlobalEventID,EventCode,ActionGeo_FullName",
        "text/csv",
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/csv; charset=utf-8")
    );
    assert!(body.starts_with(b"GlobalEventID,EventCode,ActionGeo_FullName\n"));
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("GlobalEventID", DataType::Int64, true),
        arrow::datatypes::Field::new("EventCode", DataType::Utf8, true),
        arrow::datatypes::Field::new("ActionGeo_FullName", DataType::Utf8, true),
    ]));
    let batches: Vec<_> = arrow::csv::ReaderBuilder::new(schema)
        .with_header(true)
        .build(std::io::Cursor::new(body.to_vec()))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    assert_eq!(batch.num_rows(), 6);
    assert_eq!(
        text(&batch, "EventCode"),
        ["190", "010", "0211", "04", "010", "010"]
    );
    // A field with commas survives the quoting.
    assert_eq!(
        text(&batch, "ActionGeo_FullName")[4],
        "Kyiv, Kyyiv, Misto, Ukraine"
    );

    // Parquet: every column with its stored type.
    let (status, content_type, _, body) = fetch("format=parquet", "*/*").await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/vnd.apache.parquet")
    );
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(body)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    assert_eq!((batch.num_rows(), batch.num_columns()), (6, 62));
    let ids = batch
        .column_by_name("GlobalEventID")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(ids.values().to_vec(), vec![7, 6, 4, 3, 2, 1]);
    assert_eq!(text(&batch, "EventRootCode")[3], "04");
    assert_eq!(text(&batch, "feed")[0], "english");

    // Arrow IPC with filters and a limit.
    let (status, content_type, _, body) = fetch(
        "format=arrow&action_country=US&limit=1&sort=dateadded",
        "*/*",
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/vnd.apache.arrow.stream")
    );
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body.to_vec()), None)
            .unwrap();
    let batches: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 1);
    assert_eq!(
        batches[0]
            .column_by_name("GlobalEventID")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0),
        1
    );

    // Nothing matches: a CSV with its header only; a bad format names itself.
    let (status, _, _, body) = fetch("format=csv&feed=v1&fields=GlobalEventID,feed", "*/*").await;
    assert_eq!((status, &body[..]), (200, &b"GlobalEventID,feed\n"[..]));
    let (status, _, _, body) = fetch("format=xml", "*/*").await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, body["message"].as_str()),
        (
            400,
            Some("format must be one of json, ndjson, csv, parquet, arrow, got \"xml\"")
        )
    );
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_answers_are_cached_until_the_lake_changes() {
    let mirror = sample_mirror().await;
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;
    let cache = |result: &'static str| {
        let request = app.client.get(format!("{}/metrics", app.base));
        async move {
            let text = request.send().await.unwrap().text().await.unwrap();
            let line = format!("gdelt_lake_query_cache_total{{result=\"{result}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&line))
                .map_or(0, |v| v.parse::<u64>().unwrap())
        }
    };
    // The two newest batches: 4, 6 and 7.
    app.ingest(2).await;
    let (_, first) = app.get("/api/v1/analytics/tone").await;
    assert_eq!(first["n"], 3);
    assert_eq!((cache("hit").await, cache("miss").await), (0, 1));
    let (_, again) = app.get("/api/v1/analytics/tone").await;
    assert_eq!(again["avg_tone"], first["avg_tone"]);
    assert_eq!(again["freshness"]["files_read"], 2);
    assert_eq!((cache("hit").await, cache("miss").await), (1, 1));
    // Other parameters are another answer.
    app.get("/api/v1/analytics/tone?feed=english").await;
    assert_eq!((cache("hit").await, cache("miss").await), (1, 2));
    // A new batch in the lake: computed afresh.
    app.ingest(3).await;
    let (_, after) = app.get("/api/v1/analytics/tone").await;
    assert_eq!(after["n"], 6);
    assert_eq!(after["freshness"]["files_read"], 3);
    assert_eq!((cache("hit").await, cache("miss").await), (1, 3));
    app.stop().await;
    server.stop().await;
}

/// Walks `/api/v1/events` in pages of two with `sort`, ingesting `during` after the first page.
async fn walk_while_ingesting(
    app: &TestApp,
    sort: &str,
    during: impl std::future::Future<Output = ()>,
) -> Vec<i64> {
    let base = format!("/api/v1/events?limit=2&sort={sort}&fields=GlobalEventID");
    let (status, mut page) = app.get(&base).await;
    assert_eq!(status, 200, "{page}");
    let mut seen = ids(&page);
    during.await;
    while let Some(cursor) = page["next_cursor"].as_str() {
        let (status, next) = app.get(&format!("{base}&cursor={cursor}")).await;
        assert_eq!(status, 200, "{next}");
        seen.extend(ids(&next));
        page = next;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_walk_sees_every_row_once_while_batches_arrive() {
    let (mut mirror, _server, app) = ingested().await;
    // Oldest batch first: a batch ingested mid-walk is newer, so it lands after the cursor
    // and the walk ends with it.
    let newer = "20150221000000";
    let seen = walk_while_ingesting(&app, "dateadded", async {
        mirror
            .add_export(newer, &[event_row(8, newer, &[]), event_row(9, newer, &[])])
            .await;
        let job = app.ingest(1).await;
        assert_eq!(job["rows_stored"], 2, "{job}");
    })
    .await;
    assert_eq!(seen, vec![1, 2, 3, 4, 6, 7, 8, 9]);
    // Newest first: a batch ingested mid-walk lands before the cursor; the walk goes on over
    // exactly the rows that were after it, none twice, none missed.
    let newest = "20150222000000";
    let seen = walk_while_ingesting(&app, "-dateadded", async {
        mirror
            .add_export(newest, &[event_row(10, newest, &[])])
            .await;
        let job = app.ingest(1).await;
        assert_eq!(job["rows_stored"], 1, "{job}");
    })
    .await;
    assert_eq!(seen, vec![9, 8, 7, 6, 4, 3, 2, 1]);
    let (_, all) = app.get("/api/v1/events?fields=GlobalEventID").await;
    assert_eq!(ids(&all), vec![10, 9, 8, 7, 6, 4, 3, 2, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_query_pool_answers_503_and_a_slow_export_client_is_not_timed_out() {
    let batch = "20150218230000";
    let mut mirror = Mirror::new();
    // About 30 MB of NDJSON: far more than the export channel and the socket buffers hold.
    let rows: Vec<String> = (1..=20_000).map(|i| event_row(i, batch, &[])).collect();
    mirror.add_export(batch, &rows).await;
    let server = MirrorServer::start(mirror.dir.path());
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::test_config(data_dir.path(), &server.base_url);
    config.query.max_concurrent = 1;
    config.query.queue_timeout_ms = 200;
    config.query.timeout_ms = 2_000;
    let app = TestApp::start_with(config, data_dir).await;
    assert_eq!(app.ingest(1).await["state"], "succeeded");

    // An export its client does not read holds the only connection.
    let held = app
        .client
        .get(format!("{}/api/v1/events?format=ndjson", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(held.status().as_u16(), 200);
    let busy = app
        .client
        .get(format!("{}/api/v1/analytics/tone", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status().as_u16(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    assert_eq!(
        serde_json::from_slice::<Value>(&busy.bytes().await.unwrap()).unwrap(),
        json!({
            "code": "busy",
            "message": "every query connection is busy (query.max_concurrent = 1); retry shortly"
        })
    );
    // Longer than query.timeout_ms: waiting on the client is not the query's time, so the
    // export is not cut short.
    tokio::time::sleep(std::time::Duration::from_millis(3_000)).await;
    let body = held.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 20_000);
    let last: Value = serde_json::from_str(lines[19_999]).unwrap();
    assert_eq!(last["GlobalEventID"], 1);
    // The connection is free again.
    let (status, tone) = app.get("/api/v1/analytics/tone").await;
    assert_eq!((status, &tone["n"]), (200, &json!(20_000)));
    app.stop().await;
    server.stop().await;
}
