//! The executable's configuration handling, run as a user would.

use std::process::Command;

fn gdelt_lake(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gdelt-lake"))
        .args(args)
        .env_remove("DATA_LAKE_PATH")
        .env_remove("INGEST_INTERVAL_MINUTES")
        .env_remove("INGEST_N_BATCHES")
        .output()
        .unwrap()
}

#[test]
fn invalid_configuration_stops_startup_naming_the_key() {
    let out = gdelt_lake(&["--set", "ingest.workers=0", "serve"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "gdelt-lake: invalid value for `ingest.workers`: 0 is out of range; accepted: 1..=64\n"
    );
    let out = gdelt_lake(&["--log-format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "gdelt-lake: invalid value for `log.format`: \"xml\" is not accepted; expected \"json\" or \"text\"\n"
    );
    let out = gdelt_lake(&["--config", "/nonexistent/gdelt.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("gdelt-lake: cannot read config file /nonexistent/gdelt.toml"));
}

#[test]
fn layers_and_aliases_reach_the_effective_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gdelt.toml");
    std::fs::write(
        &file,
        "[ingest]\nworkers = 3\n[server]\nlisten = \"0.0.0.0:9000\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gdelt-lake"))
        .args([
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9100",
            "config",
        ])
        .env("INGEST_N_BATCHES", "12")
        .env("GDELT_LAKE_INGEST_WORKERS", "5")
        .env_remove("DATA_LAKE_PATH")
        .env_remove("INGEST_INTERVAL_MINUTES")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: toml::Table = String::from_utf8_lossy(&out.stdout).parse().unwrap();
    assert_eq!(printed["server"]["listen"].as_str(), Some("127.0.0.1:9100"));
    assert_eq!(printed["ingest"]["workers"].as_integer(), Some(5));
    assert_eq!(printed["ingest"]["batches_per_run"].as_integer(), Some(12));
    assert_eq!(printed["lake"]["data_dir"].as_str(), Some("./data"));
}
