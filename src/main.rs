//! The `gdelt-lake` executable: parse the command line, start logging, run, shut down.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use slog::{error, info, Logger};
use tokio_util::sync::CancellationToken;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use gdelt_lake::catalog::{Catalog, FileOutcome, JobRecord};
use gdelt_lake::cli::{Cli, Command};
use gdelt_lake::ingest::listing::{parse_feeds, parse_tables, Feed, FileKind};
use gdelt_lake::jobs::JobSpec;
use gdelt_lake::{logging, Application, Engine};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.load_config(std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gdelt-lake: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.command == Some(Command::Config) {
        print!(
            "{}",
            toml::to_string_pretty(&config).expect("the configuration serialises")
        );
        return ExitCode::SUCCESS;
    }
    let (log, guard) = logging::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("gdelt-lake: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Ingest { latest } => ingest_once(config, latest as usize, &log).await,
            Command::Backfill {
                from,
                to,
                tables,
                feeds,
            } => backfill(config, from, to, tables, feeds, &log).await,
            Command::Coverage {
                since,
                until,
                table,
                feed,
            } => coverage(&config, since, until, &table, &feed),
            Command::Compact { since, until } => compact(config, since, until, &log).await,
            Command::Synth {
                days,
                out,
                seed,
                start,
                batches_per_day,
            } => {
                let options = gdelt_lake::synth::SynthOptions {
                    days,
                    out,
                    seed,
                    start,
                    batches_per_day,
                };
                let started = std::time::Instant::now();
                let summary = gdelt_lake::synth::generate(&options)
                    .await
                    .with_context(|| format!("writing {}", options.out.display()))?;
                println!(
                    "wrote {} batches: {} events, {} mentions, {:.1} MB of zips to {} in {:.1} s",
                    summary.batches,
                    summary.events,
                    summary.mentions,
                    summary.zip_bytes as f64 / 1e6,
                    options.out.join("gdeltv2").display(),
                    started.elapsed().as_secs_f64()
                );
                Ok(ExitCode::SUCCESS)
            }
            Command::Serve | Command::Config => {
                serve(config, &log).await.map(|()| ExitCode::SUCCESS)
            }
        }
    });
    let code = match outcome {
        Ok(code) => code,
        Err(e) => {
            let message = error_chain(&e);
            error!(log, "fatal"; "error" => &message);
            eprintln!("gdelt-lake: {message}");
            ExitCode::FAILURE
        }
    };
    drop(runtime);
    drop(log);
    drop(guard);
    code
}

async fn serve(config: gdelt_lake::config::Config, log: &Logger) -> anyhow::Result<()> {
    info!(log, "starting"; "version" => env!("CARGO_PKG_VERSION"),
        "config" => serde_json::to_string(&config).unwrap_or_default());
    let app = Application::build(config, log.clone())
        .await
        .context("starting")?;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    let signals = log.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!(signals, "signal received");
        trigger.cancel();
    });
    app.run(shutdown).await.context("serving")?;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn ingest_once(
    config: gdelt_lake::config::Config,
    latest: usize,
    log: &Logger,
) -> anyhow::Result<ExitCode> {
    let engine = Arc::new(Engine::open(config, log).context("starting")?);
    let Some(job) = run_job(&engine, JobSpec::Latest { n_batches: latest }, false).await? else {
        return Ok(ExitCode::from(130));
    };
    println!(
        "{:<34} {:>10} {:>12} {:>11}  status",
        "file", "rows", "quarantined", "duplicates"
    );
    for file in &job.files {
        let status = match file.outcome {
            FileOutcome::Ingested => "ingested".to_owned(),
            FileOutcome::AlreadyIngested => "already ingested".to_owned(),
            FileOutcome::InProgressElsewhere => "in progress elsewhere".to_owned(),
            FileOutcome::Failed => format!(
                "FAILED: {}",
                file.error.as_deref().unwrap_or("unknown error")
            ),
        };
        let count = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        println!(
            "{:<34} {:>10} {:>12} {:>11}  {status}",
            file.file,
            count(file.rows_stored),
            count(file.rows_quarantined),
            count(file.rows_duplicate)
        );
    }
    Ok(job_verdict(&job))
}

/// Prints the job's last line and turns its state into an exit code.
fn job_verdict(job: &JobRecord) -> ExitCode {
    match &job.error {
        Some(error) => {
            println!("job {} {}: {error}", job.id, job.state);
            ExitCode::FAILURE
        }
        None => {
            println!("job {} {}: {} file(s)", job.id, job.state, job.files.len());
            ExitCode::SUCCESS
        }
    }
}

/// Submits a job and waits for it, showing progress when asked. `None` when interrupted by
/// Ctrl-C or SIGTERM: files in progress are finished first, the rest stay pending.
async fn run_job(
    engine: &Arc<Engine>,
    spec: JobSpec,
    progress: bool,
) -> anyhow::Result<Option<JobRecord>> {
    let handle = engine.pool.submit(spec).await?;
    let id = handle.id;
    let mut done = handle.done;
    let started = Instant::now();
    let terminal = std::io::stdout().is_terminal();
    let mut last_line = Instant::now();
    let interrupted = loop {
        tokio::select! {
            _ = &mut done => break false,
            _ = wait_for_signal() => break true,
            _ = tokio::time::sleep(Duration::from_millis(if terminal { 500 } else { 10_000 })), if progress => {
                if let Some(job) = fetch_job(engine, id).await? {
                    let line = progress_line(&job, started.elapsed());
                    if terminal {
                        print!("\r{line:<100}");
                        let _ = std::io::Write::flush(&mut std::io::stdout());
                    } else if last_line.elapsed() >= Duration::from_secs(10) {
                        println!("{line}");
                        last_line = Instant::now();
                    }
                }
            }
        }
    };
    if interrupted {
        eprintln!(
            "\ninterrupted: finishing files in progress; run the same command again to continue"
        );
    }
    engine.shutdown().await;
    let job = fetch_job(engine, id)
        .await?
        .context("the job vanished from the catalog")?;
    if progress {
        if terminal {
            println!();
        }
        println!("{}", progress_line(&job, started.elapsed()));
    }
    Ok((!interrupted).then_some(job))
}

async fn fetch_job(engine: &Arc<Engine>, id: i64) -> anyhow::Result<Option<JobRecord>> {
    let catalog = engine.catalog.clone();
    Ok(tokio::task::spawn_blocking(move || catalog.job(id)).await??)
}

/// `files 12/96 (1 failed)  rows 123456  quarantined 0  34.1 MB  5.2 files/s  ETA 0:17`
fn progress_line(job: &JobRecord, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = job.finished as f64 / secs;
    let eta = if job.total > job.finished && rate > 0.0 {
        let left = ((job.total - job.finished) as f64 / rate) as u64;
        format!("ETA {}:{:02}", left / 60, left % 60)
    } else {
        "ETA -".to_owned()
    };
    let width = 20usize;
    let filled = if job.total > 0 {
        (job.finished as usize * width) / job.total as usize
    } else {
        0
    };
    format!(
        "[{}{}] files {}/{} ({} failed)  rows {}  quarantined {}  {:.1} MB  {:.1} files/s  {:.0} rows/s  {eta}",
        "#".repeat(filled),
        "-".repeat(width - filled),
        job.finished,
        job.total,
        job.failed,
        job.rows_stored,
        job.rows_quarantined,
        job.bytes as f64 / 1_048_576.0,
        rate,
        job.rows_stored as f64 / secs
    )
}

async fn compact(
    config: gdelt_lake::config::Config,
    since: Option<NaiveDate>,
    until: Option<NaiveDate>,
    log: &Logger,
) -> anyhow::Result<ExitCode> {
    let engine = Arc::new(Engine::open(config, log).context("starting")?);
    if let (Some(since), Some(until)) = (since, until) {
        anyhow::ensure!(
            since <= until,
            "--since ({since}) is after --until ({until})"
        );
    }
    let range = gdelt_lake::query::DateRange { since, until };
    let report = engine
        .maintenance
        .run(range, chrono::Utc::now().date_naive())
        .await;
    engine.shutdown().await;
    let report = report?;
    match &report.retention_cutoff {
        Some(cutoff) => println!(
            "retention: partitions before {cutoff} dropped: {} listed file(s), {} Parquet file(s)",
            report.files_expired, report.parquet_files_expired
        ),
        None => println!("retention: off (lake.retention_days = 0)"),
    }
    println!(
        "{:<9} {:<10} {:<12} {:>6} {:>10} {:>12}",
        "table", "date", "feed", "files", "rows", "bytes"
    );
    for day in &report.compacted {
        println!(
            "{:<9} {:<10} {:<12} {:>6} {:>10} {:>12}",
            day.table, day.date, day.feed, day.files_merged, day.rows, day.bytes
        );
    }
    for skipped in &report.skipped {
        println!("SKIPPED {skipped}");
    }
    println!(
        "{} day(s) compacted in {:.1} s",
        report.compacted.len(),
        report.duration_ms as f64 / 1000.0
    );
    Ok(if report.skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn backfill(
    config: gdelt_lake::config::Config,
    from: NaiveDate,
    to: NaiveDate,
    tables: Vec<String>,
    feeds: Vec<String>,
    log: &Logger,
) -> anyhow::Result<ExitCode> {
    let kinds = if tables.is_empty() {
        config.ingest_kinds()?
    } else {
        let names: Vec<&str> = tables.iter().map(String::as_str).collect();
        parse_tables(&names).map_err(|e| anyhow::anyhow!("--tables: {e}"))?
    };
    let feeds = if feeds.is_empty() {
        config.ingest_feeds()?
    } else {
        let names: Vec<&str> = feeds.iter().map(String::as_str).collect();
        parse_feeds(&names).map_err(|e| anyhow::anyhow!("--feeds: {e}"))?
    };
    gdelt_lake::jobs::check_backfill_range(
        from,
        to,
        &feeds,
        &kinds,
        chrono::Utc::now().date_naive(),
    )?;
    let engine = Arc::new(Engine::open(config, log).context("starting")?);
    let spec = JobSpec::Backfill {
        from,
        to,
        kinds,
        feeds,
    };
    let Some(job) = run_job(&engine, spec, true).await? else {
        return Ok(ExitCode::from(130));
    };
    for file in job
        .files
        .iter()
        .filter(|f| f.outcome == FileOutcome::Failed)
    {
        println!(
            "FAILED {}: {}",
            file.file,
            file.error.as_deref().unwrap_or("unknown error")
        );
    }
    Ok(job_verdict(&job))
}

fn coverage(
    config: &gdelt_lake::config::Config,
    since: Option<NaiveDate>,
    until: Option<NaiveDate>,
    table: &str,
    feed: &str,
) -> anyhow::Result<ExitCode> {
    let kind = FileKind::for_table(table).with_context(|| {
        format!("--table: {table:?} is not a table; accepted: events, mentions, gkg")
    })?;
    let feed = Feed::parse(feed).with_context(|| {
        format!("--feed: {feed:?} is not a feed; accepted: english, translingual, v1")
    })?;
    let until = until.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let since = since.unwrap_or(until - chrono::Duration::days(6));
    let path = config.lake.data_dir.join("catalog.sqlite");
    if !path.exists() {
        anyhow::bail!(
            "no catalog at {}: nothing was ingested into this data directory yet",
            path.display()
        );
    }
    let catalog = Catalog::open_read_only(&path).context("opening the catalog")?;
    let days = gdelt_lake::coverage::report(&catalog, feed, kind, since, until)?;
    println!(
        "{:<10} {:>5} {:>8} {:>8} {:>6} {:>7} {:>9} {:>10} {:>11} {:>7}",
        table,
        "slots",
        "expected",
        "ingested",
        "failed",
        "pending",
        "missing",
        "rows",
        "quarantined",
        "expired"
    );
    for d in &days {
        println!(
            "{:<10} {:>5} {:>8} {:>8} {:>6} {:>7} {:>9} {:>10} {:>11} {:>7}",
            d.date,
            d.slots,
            d.expected,
            d.ingested,
            d.failed,
            d.pending,
            d.missing_upstream
                .map_or_else(|| "?".to_owned(), |m| m.to_string()),
            d.rows_stored,
            d.rows_quarantined,
            d.expired
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// An error and its causes, each once: a cause whose text its error already quotes is skipped.
fn error_chain(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    message
}
