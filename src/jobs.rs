//! Ingestion jobs and the bounded pool of workers that runs them.
//!
//! The API, the scheduler and the CLI only submit jobs. A job plans its files (reads the
//! listing) and hands each file to a shared queue served by `ingest.workers` worker tasks, so
//! however many jobs are submitted, at most that many files are downloaded and converted at
//! once. A full job queue is refused at submission, not buffered without bound.

use std::sync::Arc;

use slog::{error, info, o, warn, Logger};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, CatalogError, FileOutcome, FileResult};
use chrono::NaiveDate;

use crate::ingest::listing::{Feed, FileKind, ListedFile};
use crate::ingest::Ingestor;
use crate::metrics::Metrics;

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSpec {
    /// Ingest the configured tables' files of the `n_batches` newest batches.
    Latest { n_batches: usize },
    /// Ingest every file of `kinds` in `feeds` whose batch date lies in `from..=to`.
    Backfill {
        from: NaiveDate,
        to: NaiveDate,
        kinds: Vec<FileKind>,
        feeds: Vec<Feed>,
    },
}

impl JobSpec {
    fn kind(&self) -> &'static str {
        match self {
            Self::Latest { .. } => "latest",
            Self::Backfill { .. } => "backfill",
        }
    }

    fn params(&self) -> serde_json::Value {
        match self {
            Self::Latest { n_batches } => serde_json::json!({ "n_batches": n_batches }),
            Self::Backfill {
                from,
                to,
                kinds,
                feeds,
            } => serde_json::json!({
                "from": from.to_string(),
                "to": to.to_string(),
                "tables": kinds.iter().map(|k| k.layout().name).collect::<Vec<_>>(),
                "feeds": feeds.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
            }),
        }
    }
}

/// Why a backfill range is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackfillRangeError {
    #[error("from ({from}) is after to ({to})")]
    Reversed { from: NaiveDate, to: NaiveDate },
    #[error("from ({from}) is before {what} began ({first})")]
    FromBeforeFeed {
        from: NaiveDate,
        what: &'static str,
        first: NaiveDate,
    },
    #[error("to ({to}) is after today ({today}, UTC)")]
    ToInFuture { to: NaiveDate, today: NaiveDate },
    #[error("none of these feeds has these tables: GDELT 1.0 (v1) has only events")]
    NoFiles,
}

/// Checks a backfill: some feed has some of the tables, and the range is ordered, within the
/// life of the oldest of `feeds` and not in the future.
///
/// # Errors
/// The first rule the backfill breaks.
pub fn check_backfill_range(
    from: NaiveDate,
    to: NaiveDate,
    feeds: &[Feed],
    kinds: &[FileKind],
    today: NaiveDate,
) -> Result<(), BackfillRangeError> {
    if !feeds
        .iter()
        .any(|feed| kinds.iter().any(|kind| feed.has(*kind)))
    {
        return Err(BackfillRangeError::NoFiles);
    }
    let (first, what) = feeds
        .iter()
        .map(|f| (f.first_day(), f.generation()))
        .min()
        .unwrap_or((Feed::English.first_day(), Feed::English.generation()));
    if from > to {
        Err(BackfillRangeError::Reversed { from, to })
    } else if from < first {
        Err(BackfillRangeError::FromBeforeFeed { from, what, first })
    } else if to > today {
        Err(BackfillRangeError::ToInFuture { to, today })
    } else {
        Ok(())
    }
}

/// Errors submitting a job.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the ingestion queue is full ({capacity} jobs waiting); retry later")]
    QueueFull { capacity: usize },
    #[error("ingestion is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("a background task failed: {0}")]
    Task(String),
}

/// A submitted job; `done` resolves when it has finished, whatever its outcome.
pub struct JobHandle {
    pub id: i64,
    pub done: oneshot::Receiver<()>,
}

struct QueuedJob {
    id: i64,
    spec: JobSpec,
    done: oneshot::Sender<()>,
}

struct WorkItem {
    job_id: i64,
    file: ListedFile,
    reply: mpsc::UnboundedSender<FileResult>,
}

/// The job queue and worker pool.
pub struct IngestPool {
    jobs: mpsc::Sender<QueuedJob>,
    capacity: usize,
    catalog: Arc<Catalog>,
    tasks: Mutex<JoinSet<()>>,
    shutdown: CancellationToken,
}

impl IngestPool {
    /// Starts `workers` worker tasks and the job dispatcher.
    pub fn start(
        ingestor: Ingestor,
        catalog: Arc<Catalog>,
        metrics: Arc<Metrics>,
        workers: usize,
        capacity: usize,
        log: Logger,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let (jobs_tx, jobs_rx) = mpsc::channel::<QueuedJob>(capacity);
        let (work_tx, work_rx) = mpsc::channel::<WorkItem>(workers);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let mut tasks = JoinSet::new();
        for worker in 0..workers {
            let work_rx = work_rx.clone();
            let ingestor = ingestor.clone();
            let metrics = metrics.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                loop {
                    let item = { work_rx.lock().await.recv().await };
                    let Some(item) = item else { break };
                    metrics.files_waiting.dec();
                    if shutdown.is_cancelled() {
                        // Not started: the file stays pending for a later run.
                        continue;
                    }
                    let result = ingestor.ingest_file(&item.file, item.job_id).await;
                    // The job may have gone away (shutdown); the result is in the catalog.
                    let _ = item.reply.send(result);
                }
                let _ = worker;
            });
        }
        let template = JobContext {
            work: work_tx,
            ingestor,
            catalog: catalog.clone(),
            metrics,
            shutdown: shutdown.clone(),
            log,
        };
        tasks.spawn(dispatch(jobs_rx, workers, template));
        Self {
            jobs: jobs_tx,
            capacity,
            catalog,
            tasks: Mutex::new(tasks),
            shutdown,
        }
    }

    /// Queues a job and returns its id at once.
    ///
    /// # Errors
    /// `QueueFull` when `ingest.queue_capacity` jobs are waiting; `ShuttingDown` after
    /// `shutdown`; catalog errors.
    pub async fn submit(&self, spec: JobSpec) -> Result<JobHandle, SubmitError> {
        let permit = self.jobs.try_reserve().map_err(|e| match e {
            mpsc::error::TrySendError::Full(()) => SubmitError::QueueFull {
                capacity: self.capacity,
            },
            mpsc::error::TrySendError::Closed(()) => SubmitError::ShuttingDown,
        })?;
        if self.shutdown.is_cancelled() {
            return Err(SubmitError::ShuttingDown);
        }
        let catalog = self.catalog.clone();
        let id = tokio::task::spawn_blocking({
            let (kind, params) = (spec.kind(), spec.params());
            move || catalog.create_job(kind, &params)
        })
        .await
        .map_err(|e| SubmitError::Task(e.to_string()))??;
        let (done, done_rx) = oneshot::channel();
        permit.send(QueuedJob { id, spec, done });
        Ok(JobHandle { id, done: done_rx })
    }

    /// Stops taking jobs, lets the files in progress finish (up to `deadline`), and returns.
    /// Files not started stay pending in the catalog and are picked up by a later run.
    pub async fn shutdown(&self, deadline: std::time::Duration) {
        self.shutdown.cancel();
        let mut tasks = self.tasks.lock().await;
        let drained = tokio::time::timeout(deadline, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }
}

/// Starts queued jobs, at most `max_running` at once; the others wait in the bounded queue, so
/// a full queue is refused at submission.
async fn dispatch(mut jobs: mpsc::Receiver<QueuedJob>, max_running: usize, template: JobContext) {
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            _ = template.shutdown.cancelled() => break,
            job = jobs.recv(), if running.len() < max_running => {
                let Some(job) = job else { break };
                let ctx = JobContext {
                    log: template.log.new(o!("job_id" => job.id)),
                    ..template.clone()
                };
                running.spawn(ctx.run(job));
            }
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    jobs.close();
    let JobContext {
        catalog, log, work, ..
    } = template;
    // Workers stop once the running jobs, which hold the other senders, are done.
    drop(work);
    while let Ok(job) = jobs.try_recv() {
        let catalog = catalog.clone();
        let id = job.id;
        let recorded = tokio::task::spawn_blocking(move || {
            catalog.finish_job(
                id,
                Some("not started: the service shut down; trigger it again"),
            )
        })
        .await;
        if !matches!(recorded, Ok(Ok(()))) {
            error!(log, "cannot record a cancelled job"; "job_id" => id);
        }
        let _ = job.done.send(());
    }
    while running.join_next().await.is_some() {}
}

/// Files a job planned, finished (whatever the outcome) and failed.
struct JobCounts {
    total: usize,
    finished: usize,
    failed: usize,
}

/// What a running job needs; the dispatcher holds a template and clones it per job.
#[derive(Clone)]
struct JobContext {
    work: mpsc::Sender<WorkItem>,
    ingestor: Ingestor,
    catalog: Arc<Catalog>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    log: Logger,
}

impl JobContext {
    async fn run(self, job: QueuedJob) {
        self.metrics.jobs_running.inc();
        let started = std::time::Instant::now();
        let outcome = self.execute(job.id, &job.spec).await;
        let error = match &outcome {
            Ok(s) if s.finished < s.total => Some(format!(
                "stopped by shutdown after {} of {} file(s); the rest stay pending for a later run",
                s.finished, s.total
            )),
            Ok(s) if s.failed > 0 => {
                Some(format!("{} file(s) failed; see files[].error", s.failed))
            }
            Ok(_) => None,
            Err(e) => Some(e.clone()),
        };
        let catalog = self.catalog.clone();
        let recorded = error.clone();
        let id = job.id;
        match tokio::task::spawn_blocking(move || catalog.finish_job(id, recorded.as_deref())).await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(self.log, "cannot record the job's end"; "error" => e.to_string()),
            Err(e) => error!(self.log, "cannot record the job's end"; "error" => e.to_string()),
        }
        let files = outcome.as_ref().map(|s| s.total).unwrap_or(0);
        let duration_ms = started.elapsed().as_millis() as u64;
        match error {
            None => info!(self.log, "job finished"; "spec" => format!("{:?}", job.spec),
                "files" => files, "duration_ms" => duration_ms),
            Some(error) => warn!(self.log, "job failed"; "spec" => format!("{:?}", job.spec),
                "files" => files, "error" => error, "duration_ms" => duration_ms),
        }
        self.metrics.jobs_running.dec();
        let _ = job.done.send(());
    }

    /// Plans and runs the job; returns its counts, or the planning error.
    async fn execute(&self, id: i64, spec: &JobSpec) -> Result<JobCounts, String> {
        let catalog = self.catalog.clone();
        tokio::task::spawn_blocking(move || catalog.begin_job(id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let planned = match spec {
            JobSpec::Latest { n_batches } => self.ingestor.plan_latest(*n_batches).await,
            JobSpec::Backfill {
                from,
                to,
                kinds,
                feeds,
            } => self.ingestor.plan_range(*from, *to, kinds, feeds).await,
        };
        let plan = planned.map_err(|e| e.to_string())?;
        let files = plan.files;
        let catalog = self.catalog.clone();
        let total = files.len();
        tokio::task::spawn_blocking(move || catalog.start_job(id, total, &plan.warnings))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        // Feed files to the pool while recording results as they come, so progress shows
        // during long jobs. Each work item carries a sender; the stream ends when all are done.
        let (results_tx, mut results_rx) = mpsc::unbounded_channel::<FileResult>();
        let feed = async move {
            for file in files {
                if self.shutdown.is_cancelled() {
                    break;
                }
                self.metrics.files_waiting.inc();
                let item = WorkItem {
                    job_id: id,
                    file,
                    reply: results_tx.clone(),
                };
                if self.work.send(item).await.is_err() {
                    self.metrics.files_waiting.dec();
                    break;
                }
            }
        };
        let collect = async {
            let mut finished = 0;
            let mut failed = 0;
            while let Some(result) = results_rx.recv().await {
                finished += 1;
                if result.outcome == FileOutcome::Failed {
                    failed += 1;
                }
                let catalog = self.catalog.clone();
                match tokio::task::spawn_blocking(move || catalog.record_job_file(id, &result))
                    .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        error!(self.log, "cannot record a file result"; "error" => e.to_string())
                    }
                    Err(e) => {
                        error!(self.log, "cannot record a file result"; "error" => e.to_string())
                    }
                }
            }
            (finished, failed)
        };
        let ((), (finished, failed)) = tokio::join!(feed, collect);
        Ok(JobCounts {
            total,
            finished,
            failed,
        })
    }
}
