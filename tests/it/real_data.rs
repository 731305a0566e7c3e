//! The real GDELT files from ../shared/gdelt, served as a mirror made by its `make-mirror`.
//! These tests skip, saying why, when that folder is absent.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::support::{shared_dir, MirrorServer, TestApp};

/// Runs make-mirror into a temporary directory.
fn make_mirror(shared: &Path) -> tempfile::TempDir {
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
        lines.contains(&"20150218230000.export.CSV.zip            2271            0  ingested"),
        "{stdout}"
    );
    assert!(
        lines.contains(&"20180101000000.export.CSV.zip            2414            0  ingested"),
        "{stdout}"
    );
    assert!(
        lines.contains(&"20150218230000.mentions.CSV.zip          8462            0  ingested"),
        "{stdout}"
    );
    assert_eq!(lines[10], "job 1 succeeded: 9 file(s)");

    let again = run(server.base_url.clone()).await;
    assert!(again.status.success());
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains(
            "20150218230000.export.CSV.zip               -            -  already ingested"
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
