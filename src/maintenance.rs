//! Lake maintenance: compaction and retention.
//!
//! Compaction merges a day's batch files of one table and feed into one Parquet file, rows in
//! batch order (so the file is sorted by batch time, and by GlobalEventID within a batch, as
//! GDELT numbers them), which leaves DuckDB one file and a few large row groups with tight
//! DATEADDED statistics to prune on, instead of 96 small files. The merged file is written
//! beside the old ones (temporary name, fsync, rename), the catalog then points the day's
//! listed files at it in one transaction, and the old files are deleted once no query that
//! may read them still runs (see `Lake::pin`): a query sees the old files or the new one,
//! never both and never neither. Rows are streamed a record batch at a time, so memory does
//! not grow with the day.
//!
//! Retention drops partitions older than `lake.retention_days`: the catalog first (the files
//! stay known as expired, so no run fetches them again), then the files, the same way.
//!
//! One maintenance run at a time: a second one waits for the first.

use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;
use slog::{info, warn, Logger};
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;

use crate::catalog::{Catalog, CatalogError, CompactionGroup};
use crate::ingest::listing::{Feed, FileKind};
use crate::lake::{Lake, LakeError};
use crate::query::DateRange;

/// Errors maintaining the lake.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error("{path} does not have the {table} table's schema; left as it is")]
    Schema { path: String, table: &'static str },
    #[error("{path}: the catalog says {expected} rows, the files hold {found}; left as they are")]
    RowCount {
        path: String,
        expected: i64,
        found: i64,
    },
    #[error("a background task failed: {0}")]
    Task(String),
}

/// One day of one table and feed merged into one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CompactedDay {
    #[schema(example = "events")]
    pub table: &'static str,
    #[schema(example = "2015-02-18")]
    pub date: String,
    #[schema(example = "english")]
    pub feed: String,
    /// Parquet files merged.
    #[schema(example = 96)]
    pub files_merged: usize,
    pub rows: i64,
    /// Size of the merged file.
    pub bytes: u64,
    /// The merged file, relative to the lake root.
    pub path: String,
}

/// What a maintenance run did.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct MaintenanceReport {
    /// Partitions with a batch date before this were dropped (null: retention is off).
    pub retention_cutoff: Option<String>,
    /// Listed files whose rows retention dropped.
    pub files_expired: i64,
    /// Parquet files retention removed from the lake.
    pub parquet_files_expired: usize,
    pub compacted: Vec<CompactedDay>,
    /// Days left as they were, with why (for example a file changed meanwhile).
    pub skipped: Vec<String>,
    pub duration_ms: u64,
}

/// Runs compaction and retention over one lake.
pub struct Maintenance {
    catalog: Arc<Catalog>,
    lake: Lake,
    retention_days: u32,
    one_at_a_time: tokio::sync::Mutex<()>,
    /// Jobs running in the background, awaited at shutdown.
    tasks: TaskTracker,
    /// The engine's runtime, which jobs run on whoever submits them (an HTTP worker's runtime
    /// stops before the engine does).
    runtime: tokio::runtime::Handle,
    log: Logger,
}

impl Maintenance {
    /// Must be called inside the Tokio runtime jobs are to run on.
    pub fn new(catalog: Arc<Catalog>, lake: Lake, retention_days: u32, log: Logger) -> Self {
        Self {
            catalog,
            lake,
            retention_days,
            one_at_a_time: tokio::sync::Mutex::new(()),
            tasks: TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
            log,
        }
    }

    /// Records a `maintenance` job over `range` and runs it in the background; its report
    /// lands in the job's `result`. Returns the job id.
    ///
    /// # Errors
    /// The job cannot be recorded.
    pub fn submit(self: &Arc<Self>, range: DateRange) -> Result<i64, MaintenanceError> {
        let day = |d: Option<NaiveDate>| d.map(|d| d.to_string());
        let params = serde_json::json!({
            "since": day(range.since),
            "until": day(range.until),
            "retention_days": self.retention_days,
        });
        let id = self.catalog.create_job("maintenance", &params)?;
        let this = self.clone();
        let job = async move {
            let log = this.log.new(slog::o!("job_id" => id));
            let catalog = this.catalog.clone();
            let started = catalog.clone();
            let recorded = tokio::task::spawn_blocking(move || started.start_job(id, 0, &[])).await;
            if !matches!(recorded, Ok(Ok(()))) {
                warn!(log, "maintenance job could not start");
            }
            let outcome = this.run(range, Utc::now().date_naive()).await;
            let finished = tokio::task::spawn_blocking(move || match outcome {
                Ok(report) => {
                    let error = (!report.skipped.is_empty()).then(|| {
                        format!(
                            "{} day(s) left as they were; see result.skipped",
                            report.skipped.len()
                        )
                    });
                    let value = serde_json::to_value(&report).unwrap_or_default();
                    catalog.finish_job_with_result(id, error.as_deref(), &value)
                }
                Err(e) => catalog.finish_job(id, Some(&e.to_string())),
            })
            .await;
            match finished {
                Ok(Ok(())) => info!(log, "maintenance job finished"),
                _ => warn!(log, "maintenance job outcome could not be recorded"),
            }
        };
        self.tasks.spawn_on(job, &self.runtime);
        Ok(id)
    }

    /// Waits for background jobs up to `deadline`; one still running after it is abandoned
    /// (the catalog marks it failed at the next start, and a half-written file is never
    /// listed).
    pub async fn shutdown(&self, deadline: std::time::Duration) {
        self.tasks.close();
        if tokio::time::timeout(deadline, self.tasks.wait())
            .await
            .is_err()
        {
            warn!(self.log, "maintenance still running at shutdown; abandoned");
        }
    }

    /// Applies retention as of `today` (when `lake.retention_days` is set), then compacts
    /// every day in `range` before `today` whose files of a table and feed are more than one.
    /// Today's partition is left alone: batches still arrive there.
    ///
    /// # Errors
    /// Catalog failures. A day that cannot be compacted is reported in `skipped` and left as
    /// it was.
    pub async fn run(
        self: &Arc<Self>,
        range: DateRange,
        today: NaiveDate,
    ) -> Result<MaintenanceReport, MaintenanceError> {
        let _one = self.one_at_a_time.lock().await;
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.run_blocking(range, today))
            .await
            .map_err(|e| MaintenanceError::Task(e.to_string()))?
    }

    fn run_blocking(
        &self,
        range: DateRange,
        today: NaiveDate,
    ) -> Result<MaintenanceReport, MaintenanceError> {
        let started = Instant::now();
        let mut report = MaintenanceReport::default();
        if self.retention_days > 0 {
            let cutoff = today - chrono::Duration::days(i64::from(self.retention_days));
            let (files, paths) = self.catalog.expire_before(&cutoff.to_string())?;
            info!(self.log, "retention applied"; "cutoff" => cutoff.to_string(),
                "files_expired" => files, "parquet_files" => paths.len());
            report.retention_cutoff = Some(cutoff.to_string());
            report.files_expired = files;
            report.parquet_files_expired = paths.len();
            self.lake.retire(paths);
        }
        let day = |d: Option<NaiveDate>| d.map(|d| d.to_string());
        let groups = self.catalog.compaction_groups(
            day(range.since).as_deref(),
            day(range.until).as_deref(),
            &today.to_string(),
        )?;
        for group in groups {
            match self.compact(&group) {
                Ok(Some(done)) => {
                    info!(self.log, "day compacted"; "table" => done.table, "date" => &done.date,
                        "feed" => &done.feed, "files" => done.files_merged, "rows" => done.rows,
                        "bytes" => done.bytes);
                    report.compacted.push(done);
                }
                Ok(None) => report.skipped.push(format!(
                    "{} {} {}: its files changed while it was compacted; left for the next run",
                    group.kind, group.batch_date, group.feed
                )),
                Err(e) => {
                    warn!(self.log, "day not compacted"; "kind" => &group.kind,
                        "date" => &group.batch_date, "feed" => &group.feed, "error" => e.to_string());
                    report.skipped.push(format!(
                        "{} {} {}: {e}",
                        group.kind, group.batch_date, group.feed
                    ));
                }
            }
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// Merges one group's files. `None` when the catalog changed meanwhile (the merged file
    /// is then discarded).
    fn compact(&self, group: &CompactionGroup) -> Result<Option<CompactedDay>, MaintenanceError> {
        let kind = FileKind::ALL
            .into_iter()
            .find(|k| k.as_str() == group.kind)
            .ok_or_else(|| MaintenanceError::Task(format!("unknown kind {}", group.kind)))?;
        let layout = kind.layout();
        let infix = Feed::parse(&group.feed).map_or("", Feed::name_infix);
        // A new name each time: a day compacted again (a late batch arrived) reads its
        // previous merged file while writing the next.
        let relative = format!(
            "{}/date={}/day-{}{infix}.parquet",
            layout.name,
            group.batch_date,
            Utc::now().format("%Y%m%dT%H%M%S%3f")
        );
        let schema = layout.schema();
        let mut sink = self.lake.writer(&relative, schema.clone())?;
        let mut rows = 0i64;
        for path in &group.paths {
            let read_err = |source| MaintenanceError::Read {
                path: path.clone(),
                source,
            };
            let absolute = self.lake.absolute(path);
            let file = File::open(&absolute).map_err(|source| {
                MaintenanceError::Lake(LakeError::Io {
                    path: absolute.clone(),
                    source,
                })
            })?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(read_err)?
                .with_batch_size(8192);
            let same = reader.schema().fields().len() == schema.fields().len()
                && reader
                    .schema()
                    .fields()
                    .iter()
                    .zip(schema.fields())
                    .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
            if !same {
                return Err(MaintenanceError::Schema {
                    path: path.clone(),
                    table: layout.name,
                });
            }
            for batch in reader.build().map_err(read_err)? {
                let batch = batch
                    .map_err(|e| read_err(parquet::errors::ParquetError::External(Box::new(e))))?;
                let batch = batch.with_schema(schema.clone()).map_err(LakeError::from)?;
                rows += batch.num_rows() as i64;
                sink.write(&batch)?;
            }
        }
        if rows != group.rows {
            return Err(MaintenanceError::RowCount {
                path: format!("{}/date={}", layout.name, group.batch_date),
                expected: group.rows,
                found: rows,
            });
        }
        let bytes = sink.commit()?;
        if !self.catalog.swap_compacted(group, &relative, bytes)? {
            self.lake.retire([relative]);
            return Ok(None);
        }
        self.lake.retire(group.paths.clone());
        Ok(Some(CompactedDay {
            table: layout.name,
            date: group.batch_date.clone(),
            feed: group.feed.clone(),
            files_merged: group.paths.len(),
            rows,
            bytes,
            path: relative,
        }))
    }
}
