//! gdelt-lake keeps a local, typed, partitioned Parquet lake of the GDELT feed up to date and
//! answers analytical questions about it over HTTP.
//!
//! `Engine` is everything but HTTP (catalog, lake, ingestion pool, query engine) and is what
//! the one-shot CLI uses; `Application` adds the HTTP server and the scheduler and is what
//! `serve` and the integration tests run.

pub mod catalog;
pub mod cli;
pub mod config;
pub mod coverage;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod labels;
pub mod lake;
pub mod logging;
pub mod maintenance;
pub mod metrics;
pub mod query;
pub mod scheduler;
pub mod synth;
#[cfg(test)]
mod test_support;

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use slog::{info, Logger};
use tokio_util::sync::CancellationToken;

use catalog::{Catalog, CatalogError};
use config::Config;
use ingest::fetch::Source;
use ingest::listing::{Feed, FileKind};
use ingest::{IngestSettings, Ingestor};
use jobs::IngestPool;
use lake::{Lake, LakeError};
use maintenance::Maintenance;
use metrics::Metrics;
use query::{QueryEngine, QueryError};

/// How long shutdown waits for files being ingested before abandoning them (they stay pending
/// in the catalog and are retried by the next run).
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Errors starting or running the application.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("data directory {0} is in use by another gdelt-lake process")]
    Locked(String),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("scheduler: {0}")]
    Scheduler(#[from] tokio_cron_scheduler::JobSchedulerError),
    #[error("HTTP server: {0}")]
    Server(std::io::Error),
}

/// Everything but HTTP: catalog, lake, ingestion pool and query engine over one data directory.
pub struct Engine {
    pub config: Config,
    /// The kinds of file of the configured tables.
    pub kinds: Vec<FileKind>,
    /// The configured feeds.
    pub feeds: Vec<Feed>,
    pub catalog: Arc<Catalog>,
    pub lake: Lake,
    pub metrics: Arc<Metrics>,
    pub pool: Arc<IngestPool>,
    pub query: QueryEngine,
    pub maintenance: Arc<Maintenance>,
    /// Held until shutdown: one process per data directory.
    lock: std::sync::Mutex<Option<File>>,
}

impl Engine {
    /// Opens the data directory (creating it), takes its lock, opens the catalog and lake and
    /// starts the ingestion pool. Must run inside a Tokio runtime.
    ///
    /// # Errors
    /// The directory cannot be created or is locked by another process; the catalog, lake,
    /// DuckDB or HTTP client cannot start.
    pub fn open(config: Config, log: &Logger) -> Result<Self, AppError> {
        let dir = &config.lake.data_dir;
        let dir_err = |source| AppError::DataDir {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(dir_err)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(dir_err)?;
        if lock.try_lock().is_err() {
            return Err(AppError::Locked(dir.display().to_string()));
        }
        let lake = Lake::open(dir)?;
        let catalog = Arc::new(Catalog::open(&dir.join("catalog.sqlite"))?);
        let metrics = Arc::new(Metrics::new());
        for kind in FileKind::ALL {
            if let Some(newest) = catalog.newest_batch(kind.as_str())? {
                metrics.observe_batch(kind.layout().name, newest.and_utc().timestamp() as f64);
            }
        }
        let source = Source::new(&config.source, &config.ingest)?;
        let kinds = config
            .ingest_kinds()
            .expect("validated with the configuration");
        let feeds = config
            .ingest_feeds()
            .expect("validated with the configuration");
        let ingestor = Ingestor::new(
            source,
            IngestSettings {
                kinds: kinds.clone(),
                feeds: feeds.clone(),
                max_attempts: config.ingest.max_attempts,
            },
            lake.clone(),
            catalog.clone(),
            metrics.clone(),
            log.new(slog::o!("component" => "ingest")),
        );
        let pool = Arc::new(IngestPool::start(
            ingestor,
            catalog.clone(),
            metrics.clone(),
            config.ingest.workers,
            config.ingest.queue_capacity,
            log.new(slog::o!("component" => "jobs")),
        ));
        let maintenance = Arc::new(Maintenance::new(
            catalog.clone(),
            lake.clone(),
            config.lake.retention_days,
            log.new(slog::o!("component" => "maintenance")),
        ));
        let query = QueryEngine::open(
            catalog.clone(),
            lake.clone(),
            metrics.clone(),
            &config.query,
        )?;
        Ok(Self {
            config,
            kinds,
            feeds,
            catalog,
            lake,
            metrics,
            pool,
            query,
            maintenance,
            lock: std::sync::Mutex::new(Some(lock)),
        })
    }

    /// Stops the ingestion pool and maintenance, letting work in progress finish up to a
    /// deadline, then releases the data directory, so another process (or a restart) can take
    /// it at once, whoever still holds a reference to this engine.
    pub async fn shutdown(&self) {
        self.pool.shutdown(DRAIN_DEADLINE).await;
        self.maintenance.shutdown(DRAIN_DEADLINE).await;
        drop(self.lock.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
}

/// The whole service: engine, HTTP server and scheduler.
pub struct Application {
    engine: Arc<Engine>,
    server: actix_web::dev::Server,
    addr: SocketAddr,
    log: Logger,
}

impl Application {
    /// Opens the engine and binds the HTTP server (port 0 picks a free port). Nothing is
    /// served until `run`.
    ///
    /// # Errors
    /// See `Engine::open`; the address cannot be bound.
    pub async fn build(config: Config, log: Logger) -> Result<Self, AppError> {
        let listen = config.server.listen.clone();
        let workers = config.server.http_workers;
        let engine = Arc::new(Engine::open(config, &log)?);
        let listener = TcpListener::bind(&listen).map_err(|source| AppError::Listen {
            addr: listen.clone(),
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| AppError::Listen {
            addr: listen,
            source,
        })?;
        let state = actix_web::web::Data::new(http::AppState {
            engine: engine.clone(),
            log: log.new(slog::o!("component" => "http")),
        });
        let mut server = actix_web::HttpServer::new(move || http::app(state.clone()))
            .disable_signals()
            .shutdown_timeout(10);
        if workers > 0 {
            server = server.workers(workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| AppError::Listen {
                addr: addr.to_string(),
                source,
            })?
            .run();
        Ok(Self {
            engine,
            server,
            addr,
            log,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The engine behind the API.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }

    /// Serves until `shutdown` is cancelled, then stops in order: HTTP, scheduler, ingestion.
    ///
    /// # Errors
    /// The scheduler cannot start or the server fails.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let config = &self.engine.config;
        // Ingestion and maintenance are scheduled independently: either can be switched off.
        let ingest = config
            .ingest
            .scheduler_enabled
            .then(|| scheduler::IngestTick {
                schedule: &config.ingest.schedule,
                batches_per_run: config.ingest.batches_per_run,
                pool: self.engine.pool.clone(),
            });
        let maintenance = config.lake.maintenance_enabled.then(|| {
            (
                config.lake.maintenance_schedule.as_str(),
                self.engine.maintenance.clone(),
            )
        });
        let scheduler = if ingest.is_some() || maintenance.is_some() {
            Some(
                scheduler::Scheduler::start(
                    ingest,
                    maintenance,
                    self.log.new(slog::o!("component" => "scheduler")),
                )
                .await?,
            )
        } else {
            None
        };
        info!(self.log, "serving"; "addr" => self.addr.to_string(),
            "docs" => format!("http://{}/docs/", self.addr), "scheduler" => config.ingest.scheduler_enabled);
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        shutdown.cancelled().await;
        info!(self.log, "shutting down");
        handle.stop(true).await;
        let served = server.await;
        if let Some(scheduler) = scheduler {
            scheduler.shutdown().await;
        }
        self.engine.shutdown().await;
        info!(self.log, "stopped");
        match served {
            Ok(result) => result.map_err(AppError::Server),
            Err(e) => Err(AppError::Server(std::io::Error::other(e))),
        }
    }
}
