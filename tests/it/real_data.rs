//! The real GDELT files from ../shared/gdelt, served as a mirror made by its `make-mirror`.
//! These tests skip, saying why, when that folder is absent.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::support::{shared_dir, test_config, MirrorServer, TestApp};

/// Runs make-mirror into a temporary directory.
pub fn make_mirror(shared: &Path) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("python3")
        .arg(shared.join("make-mirror"))
        .arg(out.path())
        .output()
        .expect("python3 runs make-mirror");
    assert!(
        status.status.success(),
        "make-mirror failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    out
}

/// Independent counts over the raw export files: lines, event codes, action countries.
struct RawCounts {
    lines: HashMap<String, usize>,
    codes: HashMap<String, i64>,
    countries: HashMap<String, i64>,
}

fn raw_counts(shared: &Path) -> RawCounts {
    let mut counts = RawCounts {
        lines: HashMap::new(),
        codes: HashMap::new(),
        countries: HashMap::new(),
    };
    for entry in std::fs::read_dir(shared.join("gdeltv2")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".CSV") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        counts
            .lines
            .insert(format!("{name}.zip"), text.lines().count());
        if !name.ends_with(".export.CSV") {
            continue;
        }
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            *counts.codes.entry(fields[26].to_owned()).or_default() += 1;
            if !fields[53].is_empty() {
                *counts.countries.entry(fields[53].to_owned()).or_default() += 1;
            }
        }
    }
    counts
}

fn ranked(counts: &HashMap<String, i64>) -> Vec<(String, i64)> {
    let mut rows: Vec<(String, i64)> = counts.iter().map(|(k, n)| (k.clone(), *n)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    rows
}

fn rows(body: &Value) -> Vec<(String, i64)> {
    body["rows"]
        .as_array()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_real_export_batch_is_stored_and_counted_exactly() {
    let Some(shared) = shared_dir() else { return };
    let mirror = make_mirror(&shared);
    let raw = raw_counts(&shared);
    // 5 exports and 4 mentions files (the GKG batch is not in the default tables).
    assert_eq!(raw.lines.len(), 9);
    let server = MirrorServer::start(mirror.path());
    let app = TestApp::start(&server.base_url).await;

    let job = app.ingest(5).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let files = job["files"].as_array().unwrap();
    assert_eq!(files.len(), 9);
    for file in files {
        let name = file["file"].as_str().unwrap();
        assert_eq!(file["outcome"], "ingested");
        assert_eq!(
            file["rows_stored"].as_i64().unwrap() as usize,
            raw.lines[name],
            "{name}"
        );
        assert_eq!(file["rows_quarantined"], 0, "{name}");
    }
    let total: usize = raw
        .lines
        .iter()
        .filter(|(n, _)| n.contains(".export."))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(total, 2271 + 2102 + 2084 + 2252 + 2414);
    let mentions: i64 = files
        .iter()
        .filter(|f| f["file"].as_str().unwrap().contains(".mentions."))
        .map(|f| f["rows_stored"].as_i64().unwrap())
        .sum();
    assert_eq!(mentions, 8462 + 8857 + 9709 + 10180);
    assert_eq!(
        job["rows_stored"].as_i64().unwrap(),
        total as i64 + mentions
    );

    let (_, codes) = app.get("/api/v1/analytics/top-event-codes?limit=500").await;
    assert_eq!(rows(&codes), ranked(&raw.codes));
    let (_, countries) = app.get("/api/v1/analytics/top-countries?limit=500").await;
    assert_eq!(rows(&countries), ranked(&raw.countries));
    let (_, tone) = app.get("/api/v1/analytics/tone").await;
    assert_eq!(tone["n"].as_u64().unwrap() as usize, total);

    // Partition pruning by batch date: only the 2018 batch.
    let (_, tone) = app.get("/api/v1/analytics/tone?since=2016-01-01").await;
    assert_eq!(tone["n"], 2414);
    // A known real row survives with its fields (first line of the 2015-02-18 23:00 export).
    let (_, found) = app
        .get("/api/v1/events/search?query=sona2015-jamming-state-security&until=2015-02-18")
        .await;
    let raw = std::fs::read_to_string(shared.join("gdeltv2/20150218230000.export.CSV")).unwrap();
    let expected = raw
        .lines()
        .filter(|l| l.contains("sona2015-jamming-state-security"))
        .count();
    assert_eq!(expected, 9);
    assert_eq!(found["count"], expected, "{found}");
    // Newest batch first, then by id descending: the file's first line comes last.
    let row = &found["rows"][8];
    assert_eq!(row["GlobalEventID"], 410412347);
    assert_eq!(row["Day"], "2014-02-18");
    assert_eq!(row["EventCode"], "043");
    assert_eq!(row["EventRootCode"], "04");
    assert_eq!(row["AvgTone"], -4.4776119402985);
    assert_eq!(
        row["ActionGeo_FullName"],
        "Waterkloof, Free State, South Africa"
    );
    assert_eq!(row["ActionGeo_FeatureID"], "-1299321");
    assert_eq!(row["DATEADDED"], "2015-02-18T23:00:00Z");
    app.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_command_prints_a_summary_and_fails_on_failure() {
    let Some(shared) = shared_dir() else { return };
    let mirror = make_mirror(&shared);
    let server = MirrorServer::start(mirror.path());
    let data = tempfile::tempdir().unwrap();
    let run = |base_url: String| {
        let data_dir = data.path().to_owned();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_gdelt-lake"))
                .args(["ingest", "--latest", "5", "--log-level", "error"])
                .arg("--data-dir")
                .arg(&data_dir)
                .arg("--base-url")
                .arg(&base_url)
                .env_remove("DATA_LAKE_PATH")
                .output()
                .await
                .unwrap()
        }
    };
    let out = run(server.base_url.clone()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 11, "{stdout}");
    assert!(
        lines.contains(
            &"20150218230000.export.CSV.zip            2271            0           0  ingested"
        ),
        "{stdout}"
    );
    assert!(
        lines.contains(
            &"20180101000000.export.CSV.zip            2414            0           0  ingested"
        ),
        "{stdout}"
    );
    assert!(
        lines.contains(
            &"20150218230000.mentions.CSV.zip          8462            0           0  ingested"
        ),
        "{stdout}"
    );
    assert_eq!(lines[10], "job 1 succeeded: 9 file(s)");

    let again = run(server.base_url.clone()).await;
    assert!(again.status.success());
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains(
            "20150218230000.export.CSV.zip               -            -           -  already ingested"
        ),
        "{stdout}"
    );

    // A source that does not answer: non-zero exit with the reason.
    let down = run("http://127.0.0.1:9/gdeltv2/".into()).await;
    assert_eq!(down.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&down.stdout);
    assert!(stdout.contains("job 3 failed: reading the listing: GET http://127.0.0.1:9/gdeltv2/masterfilelist.txt failed: could not connect"), "{stdout}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_data_directory_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let app = TestApp::start_with(
        crate::support::test_config(data.path(), "http://127.0.0.1:9/gdeltv2/"),
        tempfile::tempdir().unwrap(),
    )
    .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gdelt-lake"))
        .args(["ingest", "--latest", "1"])
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "starting: data directory {} is in use by another gdelt-lake process",
            data.path().display()
        )),
        "{stderr}"
    );
    app.stop().await;
}

/// The text of the real GKG batch's one member, unzipped by Python's zipfile (independent of
/// the product's reader).
fn raw_gkg(shared: &Path) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
             sys.stdout.buffer.write(z.read(z.namelist()[0]))",
        )
        .arg(shared.join("gdeltv2/20230702153000.gkg.csv.zip"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_mentions_and_gkg_are_stored_and_filtered_exactly() {
    let Some(shared) = shared_dir() else { return };
    let mirror = make_mirror(&shared);
    let server = MirrorServer::start(mirror.path());
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path(), &server.base_url);
    config.ingest.tables = vec!["events".into(), "mentions".into(), "gkg".into()];
    let app = TestApp::start_with(config, data_dir).await;
    // Six batches: four of 2015-02-18 (export + mentions), 2018-01-01 (export), 2023-07-02 (GKG).
    let job = app.ingest(6).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let files = job["files"].as_array().unwrap();
    assert_eq!(files.len(), 10, "{job}");
    let gkg_file = files
        .iter()
        .find(|f| f["file"] == "20230702153000.gkg.csv.zip")
        .unwrap();
    let raw = raw_gkg(&shared);
    let records: Vec<Vec<&str>> = raw.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(records.len(), 951);
    assert_eq!(gkg_file["rows_stored"], 951);
    assert_eq!(gkg_file["rows_quarantined"], 0);

    // Every record once over pages of 400, newest batch first, then by place in the file, last
    // line first.
    let mut seen = Vec::new();
    let mut url = "/api/v1/gkg?limit=400".to_owned();
    loop {
        let (status, page) = app.get(&url).await;
        assert_eq!(status, 200, "{page}");
        for row in page["rows"].as_array().unwrap() {
            seen.push(row["GKGRECORDID"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => url = format!("/api/v1/gkg?limit=400&cursor={next}"),
            None => break,
        }
    }
    let expected: Vec<String> = records.iter().rev().map(|f| f[0].to_owned()).collect();
    assert_eq!(seen, expected);

    // A known record's fields, with GDELT's delimiters and a literal `"` kept.
    let (_, first) = app
        .get("/api/v1/gkg?query=westmorlandgazette.co.uk/news/national/23627957")
        .await;
    assert_eq!(first["count"], 1, "{first}");
    let row = &first["rows"][0];
    assert_eq!(row["GKGRECORDID"], "20230702153000-0");
    assert_eq!(row["DATE"], "2023-07-02T15:30:00Z");
    assert_eq!(row["SourceCollectionIdentifier"], 1);
    assert_eq!(row["SourceCommonName"], "thewestmorlandgazette.co.uk");
    assert_eq!(row["V2Tone"], records[0][15]);
    assert_eq!(row["Themes"], records[0][7]);
    assert_eq!(row["feed"], "english");
    assert_eq!(first["freshness"]["files_read"], 1);
    let quoted = records
        .iter()
        .filter(|f| f.iter().any(|v| v.contains('"')))
        .count();
    assert!(quoted > 0);

    // Filters against independent counts over the raw file.
    let count = |pred: &dyn Fn(&[&str]) -> bool| records.iter().filter(|f| pred(f)).count();
    let protest = count(&|f| f[7].split(';').any(|t| t == "PROTEST"));
    let biden = count(&|f| f[11].to_lowercase().contains("biden"));
    let hindu = count(&|f| f[3] == "thehindu.com");
    assert_eq!((protest, biden, hindu), (51, 29, 31));
    for (query, expected) in [
        ("theme=protest", protest),
        ("person=Biden", biden),
        ("source=thehindu.com", hindu),
        (
            "theme=PROTEST&source=thehindu.com",
            count(&|f| f[3] == "thehindu.com" && f[7].split(';').any(|t| t == "PROTEST")),
        ),
        ("since=2023-07-03", 0),
        ("feed=translingual", 0),
    ] {
        let (status, page) = app.get(&format!("/api/v1/gkg?limit=1000&{query}")).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(
            page["count"].as_u64().unwrap() as usize,
            expected,
            "{query}"
        );
    }

    // The README's example.
    let (_, page) = app
        .get("/api/v1/gkg?theme=PROTEST&person=biden&limit=10")
        .await;
    assert_eq!(page["count"], 5, "{page}");
    assert_eq!(page["rows"][0]["GKGRECORDID"], "20230702153000-874");
    assert_eq!(page["next_cursor"], Value::Null);

    // Mentions of one event across the four 2015 batches, against the raw files.
    let mut raw_mentions = 0;
    for batch in ["230000", "231500", "233000", "234500"] {
        let text =
            std::fs::read_to_string(shared.join(format!("gdeltv2/20150218{batch}.mentions.CSV")))
                .unwrap();
        raw_mentions += text
            .lines()
            .filter(|l| l.starts_with("410413618\t"))
            .count();
    }
    assert_eq!(raw_mentions, 75);
    let (_, mentions) = app
        .get("/api/v1/mentions?event_id=410413618&limit=1000")
        .await;
    assert_eq!(mentions["count"], raw_mentions, "{mentions}");
    assert_eq!(mentions["freshness"]["files_read"], 4);
    assert!(mentions["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["GlobalEventID"] == 410413618
            && r["MentionTimeDate"]
                .as_str()
                .unwrap()
                .starts_with("2015-02-18T23:")));
    let (status, bad) = app.get("/api/v1/mentions?event_id=abc").await;
    assert_eq!(status, 400);
    assert_eq!(bad["parameter"], "event_id");
    assert_eq!(
        bad["message"],
        "event_id must be GlobalEventIDs (integers), got \"abc\""
    );
    let (status, bad) = app.get("/api/v1/gkg?theme=no%20spaces").await;
    assert_eq!(status, 400);
    assert_eq!(bad["parameter"], "theme");
    app.stop().await;
    server.stop().await;
}
