//! The in-process cron scheduler: on each ingestion tick it submits a "latest batches" job, and
//! on each maintenance tick a maintenance job (retention, compaction of complete days), nothing
//! more.
//!
//! The ingestion pool decides how the work runs; overlapping ticks are safe because files are
//! claimed in the catalog before they are ingested.

use std::sync::Arc;

use slog::{info, warn, Logger};
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::jobs::{IngestPool, JobSpec};
use crate::maintenance::Maintenance;
use crate::query::DateRange;

/// What each ingestion tick submits: a job for the newest `batches_per_run` batches.
pub struct IngestTick<'a> {
    pub schedule: &'a str,
    pub batches_per_run: usize,
    pub pool: Arc<IngestPool>,
}

/// A running scheduler.
pub struct Scheduler {
    inner: JobScheduler,
}

impl Scheduler {
    /// Starts ticking on `ingest`'s schedule (cron with seconds, UTC) and on `maintenance`'s,
    /// each when given.
    ///
    /// # Errors
    /// A schedule does not parse or the scheduler cannot start.
    pub async fn start(
        ingest: Option<IngestTick<'_>>,
        maintenance: Option<(&str, Arc<Maintenance>)>,
        log: Logger,
    ) -> Result<Self, JobSchedulerError> {
        let inner = JobScheduler::new().await?;
        if let Some((schedule, maintenance)) = maintenance {
            let log = log.clone();
            inner
                .add(Job::new_async(schedule, move |_id, _lock| {
                    let log = log.clone();
                    let maintenance = maintenance.clone();
                    Box::pin(async move {
                        let queued = tokio::task::spawn_blocking(move || {
                            maintenance.submit(DateRange::default())
                        })
                        .await;
                        match queued {
                            Ok(Ok(id)) => info!(log, "scheduled maintenance queued"; "job_id" => id),
                            Ok(Err(e)) => {
                                warn!(log, "scheduled maintenance not queued"; "error" => e.to_string())
                            }
                            Err(e) => {
                                warn!(log, "scheduled maintenance not queued"; "error" => e.to_string())
                            }
                        }
                    })
                })?)
                .await?;
        }
        if let Some(IngestTick {
            schedule,
            batches_per_run,
            pool,
        }) = ingest
        {
            let job = Job::new_async(schedule, move |_id, _lock| {
                let pool = pool.clone();
                let log = log.clone();
                Box::pin(async move {
                    match pool
                        .submit(JobSpec::Latest {
                            n_batches: batches_per_run,
                        })
                        .await
                    {
                        Ok(handle) => {
                            info!(log, "scheduled ingestion queued"; "job_id" => handle.id)
                        }
                        Err(e) => {
                            warn!(log, "scheduled ingestion not queued"; "error" => e.to_string())
                        }
                    }
                })
            })?;
            inner.add(job).await?;
        }
        inner.start().await?;
        Ok(Self { inner })
    }

    /// Stops ticking; a job already submitted carries on in the pool.
    pub async fn shutdown(mut self) {
        // Errors here only mean the scheduler had already stopped.
        let _ = self.inner.shutdown().await;
    }
}
