//! The `gdelt-lake` executable: parse the command line, start logging, run, shut down.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use slog::{error, info, Logger};
use tokio_util::sync::CancellationToken;

use gdelt_lake::catalog::FileOutcome;
use gdelt_lake::cli::{Cli, Command};
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
            Command::Serve | Command::Config => {
                serve(config, &log).await.map(|()| ExitCode::SUCCESS)
            }
        }
    });
    let code = match outcome {
        Ok(code) => code,
        Err(e) => {
            error!(log, "fatal"; "error" => format!("{e:#}"));
            eprintln!("gdelt-lake: {e:#}");
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
    let handle = engine
        .pool
        .submit(JobSpec::Latest { n_batches: latest })
        .await?;
    // The job always signals completion; an error here means the pool stopped.
    let _ = handle.done.await;
    let catalog = engine.catalog.clone();
    let job = tokio::task::spawn_blocking(move || catalog.job(handle.id))
        .await??
        .context("the job vanished from the catalog")?;
    engine.shutdown().await;
    println!(
        "{:<34} {:>10} {:>12}  status",
        "batch", "rows", "quarantined"
    );
    let mut failed = false;
    for file in &job.files {
        let status = match file.outcome {
            FileOutcome::Ingested => "ingested".to_owned(),
            FileOutcome::AlreadyIngested => "already ingested".to_owned(),
            FileOutcome::InProgressElsewhere => "in progress elsewhere".to_owned(),
            FileOutcome::Failed => {
                failed = true;
                format!(
                    "FAILED: {}",
                    file.error.as_deref().unwrap_or("unknown error")
                )
            }
        };
        let count = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        println!(
            "{:<34} {:>10} {:>12}  {status}",
            file.file,
            count(file.rows_stored),
            count(file.rows_quarantined)
        );
    }
    if let Some(error) = &job.error {
        println!("job {} {}: {error}", job.id, job.state);
        failed = true;
    } else {
        println!(
            "job {} {}: {} batch(es)",
            job.id,
            job.state,
            job.files.len()
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
