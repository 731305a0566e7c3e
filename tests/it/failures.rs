//! Bad input from the source: each gets a clear, recorded outcome and leaves the lake intact.

use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipEntryBuilder};
use serde_json::Value;

use crate::support::{event_row, md5_hex, zip_bytes, Mirror, MirrorServer, TestApp};

const GOOD: &str = "20150218230000";
const BAD: &str = "20150218231500";

fn file_result<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == name)
        .unwrap_or_else(|| panic!("no result for {name} in {job}"))
}

/// A mirror with one good batch and, newer, a batch whose zip bytes are `bad`.
async fn mirror_with_bad(bad: &[u8], listed_md5: Option<&str>) -> Mirror {
    let mut mirror = Mirror::new();
    mirror.add_export(GOOD, &[event_row(1, GOOD, &[])]).await;
    mirror.add_raw(&format!("{BAD}.export.CSV.zip"), bad, listed_md5);
    mirror
}

/// Ingests both batches and checks that the bad one failed with `reason` and left nothing.
async fn assert_bad_batch_fails(mirror: &Mirror, reason: &str) -> (MirrorServer, TestApp) {
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;
    let job = app.ingest(2).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"], "1 file(s) failed; see files[].error");
    let bad = file_result(&job, &format!("{BAD}.export.CSV.zip"));
    assert_eq!(bad["outcome"], "failed");
    assert_eq!(bad["error"], reason);
    let good = file_result(&job, &format!("{GOOD}.export.CSV.zip"));
    assert_eq!(
        (good["outcome"].as_str(), good["rows_stored"].as_i64()),
        (Some("ingested"), Some(1))
    );
    let (lake, tmp) = app.lake_files();
    assert_eq!(lake.len(), 1, "{lake:?}");
    assert!(lake[0].ends_with(&format!("events/date=2015-02-18/{GOOD}.parquet")));
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
    let (_, tone) = app.get("/api/v1/analytics/tone").await;
    assert_eq!(tone["n"], 1);
    (server, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_md5_fails_the_file_and_a_fixed_listing_retries_it() {
    let zip = zip_bytes(
        &format!("{BAD}.export.CSV"),
        format!("{}\n", event_row(2, BAD, &[])).as_bytes(),
    )
    .await;
    let real = md5_hex(&zip);
    let mut mirror = mirror_with_bad(&zip, Some("00000000000000000000000000000000")).await;
    let reason = format!(
        "md5 mismatch for {BAD}.export.CSV.zip: listing says 00000000000000000000000000000000, downloaded {real}"
    );
    let (server, app) = assert_bad_batch_fails(&mirror, &reason).await;
    let name = format!("{BAD}.export.CSV.zip");
    assert_eq!(
        app.engine.catalog.file_status(&name).unwrap().as_deref(),
        Some("failed")
    );

    // The listing is corrected upstream: the failed file is retried, the good one is not.
    mirror.set_listing_line(
        &name,
        &format!(
            "{} {real} http://data.gdeltproject.org/gdeltv2/{name}",
            zip.len()
        ),
    );
    let job = app.ingest(2).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(file_result(&job, &name)["outcome"], "ingested");
    assert_eq!(
        file_result(&job, &format!("{GOOD}.export.CSV.zip"))["outcome"],
        "already_ingested"
    );
    let (_, tone) = app.get("/api/v1/analytics/tone").await;
    assert_eq!(tone["n"], 2);
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_error_page_is_not_a_zip() {
    let page = b"<html><body>502 Bad Gateway</body></html>\n";
    let mirror = mirror_with_bad(page, None).await;
    let (server, app) = assert_bad_batch_fails(
        &mirror,
        "not a readable zip: Encountered an unexpected header (actual: 0x6d74683c, expected: 0x4034b50).",
    )
    .await;
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_zip_fails_even_when_the_listing_matches_it() {
    let rows: Vec<String> = (0..400)
        .map(|i| event_row(i, BAD, &[("SOURCEURL", &format!("http://x/{i}"))]))
        .collect();
    let zip = zip_bytes(
        &format!("{BAD}.export.CSV"),
        (rows.join("\n") + "\n").as_bytes(),
    )
    .await;
    let truncated = &zip[..zip.len() / 2];
    let mirror = mirror_with_bad(truncated, None).await;
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;
    let job = app.ingest(2).await;
    let bad = file_result(&job, &format!("{BAD}.export.CSV.zip"));
    assert_eq!(bad["outcome"], "failed");
    let error = bad["error"].as_str().unwrap();
    assert!(error.starts_with("not a readable zip: "), "{error}");
    let (lake, tmp) = app.lake_files();
    assert_eq!(lake.len(), 1);
    assert!(tmp.is_empty(), "{tmp:?}");
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zips_with_several_members_or_a_foreign_member_are_refused() {
    let member = format!("{BAD}.export.CSV");
    let mut writer = ZipFileWriter::new(Vec::<u8>::new());
    for name in [member.as_str(), "extra.txt"] {
        writer
            .write_entry_whole(
                ZipEntryBuilder::new(name.to_owned().into(), Compression::Deflate),
                event_row(9, BAD, &[]).as_bytes(),
            )
            .await
            .unwrap();
    }
    let two = writer.close().await.unwrap();
    let mirror = mirror_with_bad(&two, None).await;
    let (server, app) = assert_bad_batch_fails(&mirror, "the zip has more than one member").await;
    app.stop().await;
    server.stop().await;

    let foreign = zip_bytes("index.html", b"hello\n").await;
    let mirror = mirror_with_bad(&foreign, None).await;
    let (server, app) = assert_bad_batch_fails(
        &mirror,
        &format!("zip member is named \"index.html\", expected \"{BAD}.export.CSV\""),
    )
    .await;
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_member_is_a_valid_empty_batch() {
    let mut mirror = Mirror::new();
    mirror.add_export(BAD, &[]).await;
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;
    let job = app.ingest(1).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let result = file_result(&job, &format!("{BAD}.export.CSV.zip"));
    assert_eq!(
        (
            result["rows_stored"].as_i64(),
            result["rows_quarantined"].as_i64()
        ),
        (Some(0), Some(0))
    );
    let (lake, _) = app.lake_files();
    assert!(lake.is_empty(), "{lake:?}");
    assert_eq!(app.get("/api/v1/analytics/tone").await.1["n"], 0);
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_server_errors_are_retried_and_permanent_ones_recorded() {
    let mut mirror = Mirror::new();
    mirror.add_export(GOOD, &[event_row(1, GOOD, &[])]).await;
    mirror.add_export(BAD, &[event_row(2, BAD, &[])]).await;
    let server = MirrorServer::start(mirror.dir.path());
    // Two 503s, then the file: within the three attempts.
    server.fail(&format!("{GOOD}.export.CSV.zip"), 503, 2);
    // A 404 is not transient: one request, then the failure is recorded.
    server.fail(&format!("{BAD}.export.CSV.zip"), 404, 10);
    let app = TestApp::start(&server.base_url).await;
    let job = app.ingest(2).await;
    assert_eq!(
        file_result(&job, &format!("{GOOD}.export.CSV.zip"))["outcome"],
        "ingested"
    );
    assert_eq!(server.hits(&format!("{GOOD}.export.CSV.zip")), 3);
    let bad = file_result(&job, &format!("{BAD}.export.CSV.zip"));
    assert_eq!(
        bad["error"].as_str().unwrap(),
        format!(
            "GET {}{BAD}.export.CSV.zip answered HTTP 404",
            server.base_url
        )
    );
    assert_eq!(server.hits(&format!("{BAD}.export.CSV.zip")), 1);

    // A listing that cannot be fetched fails the job with the reason.
    server.fail("masterfilelist.txt", 500, 3);
    let job = app.ingest(2).await;
    assert_eq!(job["state"], "failed");
    assert_eq!(
        job["error"].as_str().unwrap(),
        format!(
            "reading the listing: GET {}masterfilelist.txt answered HTTP 500",
            server.base_url
        )
    );
    assert_eq!(job["files"], serde_json::json!([]));
    // It ran (reading the listing) before it failed.
    assert!(job["started_at"].is_string(), "{job}");
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_with_no_member_fails_and_a_bad_listing_line_is_reported() {
    let empty = ZipFileWriter::new(Vec::<u8>::new()).close().await.unwrap();
    let mut mirror = mirror_with_bad(&empty, None).await;
    // A line GDELT never meant: skipped, counted and reported in the job, not fatal.
    mirror.add_raw("20150218233000.export.CSV.zip", b"x", None);
    mirror.set_listing_line("20150218233000.export.CSV.zip", "not a listing line");
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;
    let job = app.ingest(2).await;
    assert_eq!(
        file_result(&job, &format!("{BAD}.export.CSV.zip"))["error"],
        "the zip has no member"
    );
    assert_eq!(
        file_result(&job, &format!("{GOOD}.export.CSV.zip"))["outcome"],
        "ingested"
    );
    assert_eq!(
        job["warnings"],
        serde_json::json!(["masterfilelist.txt: 1 listing line(s) not understood and skipped; first: expected '<size> <md5> <url>', found 4 fields: \"not a listing line\""])
    );
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_with_no_gdelt_line_fails_the_job() {
    let mirror = Mirror::new();
    std::fs::write(
        mirror.dir.path().join("gdeltv2/masterfilelist.txt"),
        "<html>\n<body>Not Found</body>\n",
    )
    .unwrap();
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;
    let job = app.ingest(2).await;
    assert_eq!(job["state"], "failed");
    assert_eq!(
        job["error"],
        "masterfilelist.txt names no GDELT file (2 line(s) not understood; first: expected '<size> <md5> <url>', \
         found 1 fields: \"<html>\"); is source.base_url a GDELT mirror?"
    );
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_and_shutdown_starts_no_new_file() {
    let mut mirror = Mirror::new();
    let batches: Vec<String> = (0..4).map(|i| format!("201502190{i}0000")).collect();
    for (i, b) in batches.iter().enumerate() {
        mirror.add_export(b, &[event_row(i as i64, b, &[])]).await;
    }
    let server = MirrorServer::start(mirror.dir.path());
    server.slow_down(std::time::Duration::from_millis(300));
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::test_config(data_dir.path(), &server.base_url);
    config.ingest.workers = 1;
    config.ingest.queue_capacity = 1;
    let app = TestApp::start_with(config, data_dir).await;

    let (status, first) = app.post("/api/v1/ingest/trigger?n_batches=4").await;
    assert_eq!(status, 202);
    let url = first["status_url"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        if app.get(&url).await.1["state"] == "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // One job runs (one worker), one may wait (capacity 1), the next is refused.
    assert_eq!(app.post("/api/v1/ingest/trigger").await.0, 202);
    let refused = app
        .client
        .post(format!("{}/api/v1/ingest/trigger", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(refused.headers()["retry-after"], "30");
    let body: serde_json::Value = serde_json::from_slice(&refused.bytes().await.unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"code": "queue_full", "message": "the ingestion queue is full (1 jobs waiting); retry later"})
    );

    // Stop while the first job is on its first or second file: what was started finishes,
    // nothing new starts, the rest stays pending.
    let engine = app.engine.clone();
    let data_dir = app.stop().await;
    let job = engine.catalog.job(1).unwrap().unwrap();
    let hits: usize = batches
        .iter()
        .map(|b| server.hits(&format!("{b}.export.CSV.zip")))
        .sum();
    assert_eq!(hits as i64, job.finished, "{job:?}");
    assert!(job.finished < 4, "{job:?}");
    assert_eq!(
        job.error.as_deref(),
        Some(
            format!(
                "stopped by shutdown after {} of 4 file(s); the rest stay pending for a later run",
                job.finished
            )
            .as_str()
        )
    );
    let second = engine.catalog.job(2).unwrap().unwrap();
    assert_eq!(
        (second.state.as_str(), second.error.as_deref()),
        (
            "failed",
            Some("not started: the service shut down; trigger it again")
        )
    );
    drop(engine);
    drop(data_dir);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_over_the_size_cap_fails_and_leaves_nothing() {
    // Incompressible bytes make a zip of about 1.5 MiB, over a 1 MiB cap.
    let mut noise = Vec::with_capacity(1_600_000);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while noise.len() < 1_600_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    let zip = zip_bytes(&format!("{BAD}.export.CSV"), &noise).await;
    assert!(zip.len() > 1024 * 1024);
    let mirror = mirror_with_bad(&zip, None).await;
    let server = MirrorServer::start(mirror.dir.path());
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::test_config(data_dir.path(), &server.base_url);
    config.ingest.max_download_mb = 1;
    let app = TestApp::start_with(config, data_dir).await;
    let job = app.ingest(2).await;
    assert_eq!(
        file_result(&job, &format!("{BAD}.export.CSV.zip"))["error"],
        format!("download of {BAD}.export.CSV.zip exceeds the 1048576-byte limit (ingest.max_download_mb)")
    );
    assert_eq!(
        file_result(&job, &format!("{GOOD}.export.CSV.zip"))["outcome"],
        "ingested"
    );
    // The listing already says it is too large: it is not even requested.
    assert_eq!(server.hits(&format!("{BAD}.export.CSV.zip")), 0);
    let (lake, tmp) = app.lake_files();
    assert_eq!(lake.len(), 1);
    assert!(tmp.is_empty(), "{tmp:?}");
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_longer_or_shorter_than_listed_fails_and_leaves_nothing() {
    let zip = zip_bytes(
        &format!("{BAD}.export.CSV"),
        event_row(2, BAD, &[]).as_bytes(),
    )
    .await;
    let md5 = md5_hex(&zip);
    let name = format!("{BAD}.export.CSV.zip");
    let listed = |size: usize| format!("{size} {md5} http://data.gdeltproject.org/gdeltv2/{name}");

    let mut mirror = mirror_with_bad(&zip, None).await;
    mirror.set_listing_line(&name, &listed(zip.len() - 10));
    let (server, app) = assert_bad_batch_fails(
        &mirror,
        &format!(
            "size mismatch for {name}: listing says {} bytes, the server sent more (download stopped)",
            zip.len() - 10
        ),
    )
    .await;
    app.stop().await;
    server.stop().await;

    mirror.set_listing_line(&name, &listed(zip.len() + 10));
    let (server, app) = assert_bad_batch_fails(
        &mirror,
        &format!(
            "size mismatch for {name}: listing says {} bytes, downloaded {}",
            zip.len() + 10,
            zip.len()
        ),
    )
    .await;
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_retried_after_the_wait_its_retry_after_asks() {
    let mut mirror = Mirror::new();
    mirror.add_export(GOOD, &[event_row(1, GOOD, &[])]).await;
    let server = MirrorServer::start(mirror.dir.path());
    let name = format!("{GOOD}.export.CSV.zip");
    server.fail_with_retry_after(&name, 429, 1, "1");
    // The configured backoff is 10 ms: only Retry-After explains a wait of a second.
    let app = TestApp::start(&server.base_url).await;
    let job = app.ingest(1).await;
    assert_eq!(file_result(&job, &name)["outcome"], "ingested");
    let times = server.hit_times(&name);
    assert_eq!(times.len(), 2);
    let waited = times[1] - times[0];
    assert!(
        waited >= std::time::Duration::from_millis(950),
        "retried after {waited:?}"
    );
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_utf8_line_is_quarantined_byte_for_byte_and_the_rest_stored() {
    let mut bad_line = event_row(11, BAD, &[("Actor1Name", "CAF#")]).into_bytes();
    // A Latin-1 É where UTF-8 was promised.
    let at = bad_line.windows(4).position(|w| w == b"CAF#").unwrap();
    bad_line[at + 3] = 0xC9;
    let mut content = format!("{}\n", event_row(10, BAD, &[])).into_bytes();
    content.extend_from_slice(&bad_line);
    content.push(b'\n');
    content.extend_from_slice(format!("{}\n", event_row(12, BAD, &[])).as_bytes());
    let zip = zip_bytes(&format!("{BAD}.export.CSV"), &content).await;
    let mirror = mirror_with_bad(&zip, None).await;
    let server = MirrorServer::start(mirror.dir.path());
    let app = TestApp::start(&server.base_url).await;
    let job = app.ingest(2).await;
    let name = format!("{BAD}.export.CSV.zip");
    let result = file_result(&job, &name);
    assert_eq!(
        (
            result["outcome"].as_str(),
            result["rows_stored"].as_i64(),
            result["rows_quarantined"].as_i64()
        ),
        (Some("ingested"), Some(2), Some(1))
    );
    let quarantined = app.engine.catalog.quarantined(&name).unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].0, 2);
    assert_eq!(
        quarantined[0].1,
        format!("invalid UTF-8 at byte {}", at + 3)
    );
    assert_eq!(quarantined[0].2, bad_line);
    let (_, found) = app.get("/api/v1/events?fields=GlobalEventID").await;
    assert_eq!(crate::api::ids(&found), vec![12, 10, 1]);
    app.stop().await;
    server.stop().await;
}
