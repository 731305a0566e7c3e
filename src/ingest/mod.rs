//! Ingestion: source listing → download → unzip → parse → write, and the catalog updates.
//!
//! `Ingestor::plan_latest` decides which files a run needs; `Ingestor::ingest_file` takes one
//! listed file all the way into the lake. A file is claimed in the catalog before any work, so
//! two runs never ingest the same batch twice; a stored batch is a no-op, a failed one is
//! retried. Nothing here knows about HTTP serving or job queues.

pub mod convert;
pub mod fetch;
pub mod listing;
pub mod parse;

use std::sync::Arc;
use std::time::Instant;

use slog::{error, info, o, warn, Logger};

use crate::catalog::{Catalog, CatalogError, FileOutcome, FileResult};
use crate::lake::Lake;
use crate::metrics::Metrics;
use convert::ConvertError;
use fetch::{FetchError, Source};
use listing::{FileKind, ListedFile};

/// The table that events exports feed.
pub const EVENTS_TABLE: &str = "events";

/// Errors that stop a whole run (as opposed to one file, which is recorded and skipped).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("reading the listing: {0}")]
    Listing(#[from] FetchError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("a background task failed: {0}")]
    Task(String),
}

/// Why one file failed, and at which stage.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Convert(#[from] ConvertError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl FileError {
    fn stage(&self) -> &'static str {
        match self {
            Self::Fetch(_) => "download",
            Self::Convert(ConvertError::Lake(_)) => "write",
            Self::Convert(_) => "convert",
            Self::Catalog(_) => "catalog",
        }
    }
}

/// Does the work of ingestion.
#[derive(Clone)]
pub struct Ingestor {
    source: Source,
    lake: Lake,
    catalog: Arc<Catalog>,
    metrics: Arc<Metrics>,
    log: Logger,
}

async fn blocking<T, F>(f: F) -> Result<T, IngestError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| IngestError::Task(e.to_string()))
}

impl Ingestor {
    /// An ingestor over a source, lake and catalog.
    pub fn new(
        source: Source,
        lake: Lake,
        catalog: Arc<Catalog>,
        metrics: Arc<Metrics>,
        log: Logger,
    ) -> Self {
        Self {
            source,
            lake,
            catalog,
            metrics,
            log,
        }
    }

    /// The event files of the `n` newest batches, recorded in the catalog as seen.
    /// `lastupdate.txt` is enough for the newest batch; more need `masterfilelist.txt`.
    ///
    /// # Errors
    /// The listing cannot be fetched, or the catalog cannot record it.
    pub async fn plan_latest(&self, n: usize) -> Result<Vec<ListedFile>, IngestError> {
        let mut selection = None;
        if n == 1 {
            let last = self
                .source
                .latest("lastupdate.txt", FileKind::Export, 1)
                .await?;
            if !last.files.is_empty() {
                selection = Some(last);
            }
        }
        let selection = match selection {
            Some(s) => s,
            None => {
                self.source
                    .latest("masterfilelist.txt", FileKind::Export, n)
                    .await?
            }
        };
        if selection.bad_lines > 0 {
            warn!(self.log, "listing lines not understood";
                "count" => selection.bad_lines, "first" => selection.first_bad_line.as_deref());
        }
        let files = selection.files;
        let catalog = self.catalog.clone();
        let recorded = files.clone();
        blocking(move || catalog.record_seen(&recorded)).await??;
        Ok(files)
    }

    /// Ingests one listed file unless it is stored already or being ingested elsewhere.
    /// Failures are recorded in the catalog and returned as a `Failed` result, never raised.
    pub async fn ingest_file(&self, file: &ListedFile, job_id: i64) -> FileResult {
        let started = Instant::now();
        let log = self
            .log
            .new(o!("job_id" => job_id, "batch" => file.name.clone()));
        let table = EVENTS_TABLE;
        let result = |outcome, rows: Option<(u64, u64)>, error: Option<String>| FileResult {
            file: file.name.clone(),
            outcome,
            rows_stored: rows.map(|r| r.0 as i64),
            rows_quarantined: rows.map(|r| r.1 as i64),
            error,
            duration_ms: Some(started.elapsed().as_millis() as i64),
        };
        let catalog = self.catalog.clone();
        let name = file.name.clone();
        let claim = blocking(move || -> Result<(bool, Option<String>), CatalogError> {
            if catalog.claim(&name)? {
                return Ok((true, None));
            }
            Ok((false, catalog.file_status(&name)?))
        })
        .await;
        match claim {
            Ok(Ok((true, _))) => {}
            Ok(Ok((false, status))) => {
                let outcome = if status.as_deref() == Some("ingested") {
                    FileOutcome::AlreadyIngested
                } else {
                    FileOutcome::InProgressElsewhere
                };
                self.metrics
                    .ingest_files
                    .with_label_values(&[
                        table,
                        if outcome == FileOutcome::AlreadyIngested {
                            "already_ingested"
                        } else {
                            "in_progress_elsewhere"
                        },
                    ])
                    .inc();
                info!(log, "batch skipped"; "outcome" => format!("{outcome:?}"));
                return result(outcome, None, None);
            }
            Ok(Err(e)) => return result(FileOutcome::Failed, None, Some(e.to_string())),
            Err(e) => return result(FileOutcome::Failed, None, Some(e.to_string())),
        }

        match self.store(file).await {
            Ok((rows, quarantined, bytes)) => {
                self.metrics
                    .ingest_files
                    .with_label_values(&[table, "ingested"])
                    .inc();
                self.metrics
                    .ingest_rows
                    .with_label_values(&[table])
                    .inc_by(rows);
                self.metrics
                    .ingest_quarantined
                    .with_label_values(&[table])
                    .inc_by(quarantined);
                self.metrics
                    .ingest_bytes
                    .with_label_values(&[table])
                    .inc_by(bytes);
                self.metrics
                    .observe_batch(table, file.timestamp.and_utc().timestamp() as f64);
                info!(log, "batch ingested"; "rows" => rows, "quarantined" => quarantined,
                    "bytes" => bytes, "duration_ms" => started.elapsed().as_millis() as u64);
                result(FileOutcome::Ingested, Some((rows, quarantined)), None)
            }
            Err(e) => {
                let reason = e.to_string();
                self.metrics
                    .ingest_files
                    .with_label_values(&[table, "failed"])
                    .inc();
                self.metrics
                    .ingest_failures
                    .with_label_values(&[table, e.stage()])
                    .inc();
                error!(log, "batch failed"; "error" => &reason, "stage" => e.stage(),
                    "duration_ms" => started.elapsed().as_millis() as u64);
                let catalog = self.catalog.clone();
                let name = file.name.clone();
                let recorded = reason.clone();
                let recorded = match blocking(move || catalog.mark_failed(&name, &recorded)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = recorded {
                    error!(log, "cannot record the failure in the catalog"; "error" => e);
                }
                result(FileOutcome::Failed, None, Some(reason))
            }
        }
    }

    /// Download, verify, convert, commit the Parquet file, record it. Returns rows stored,
    /// rows quarantined and bytes downloaded.
    async fn store(&self, file: &ListedFile) -> Result<(u64, u64, u64), FileError> {
        let download = self.source.download(file, self.lake.tmp_dir()).await?;
        let member = file.name.strip_suffix(".zip").unwrap_or(&file.name);
        let target = Lake::batch_path(EVENTS_TABLE, file.timestamp);
        let converted = convert::convert(
            download.file.path(),
            member,
            &parse::EVENTS,
            &self.lake,
            &target,
        )
        .await?;
        drop(download);
        let rows = converted.rows_stored;
        let quarantined = converted.quarantined.len() as u64;
        debug_assert_eq!(rows + quarantined, converted.lines_read);
        let catalog = self.catalog.clone();
        let name = file.name.clone();
        let bytes = file.size;
        tokio::task::spawn_blocking(move || -> Result<(), FileError> {
            let (path, parquet_bytes) = match converted.sink {
                Some(sink) => (Some(target), sink.commit().map_err(ConvertError::from)?),
                None => (None, 0),
            };
            catalog.mark_ingested(
                &name,
                converted.rows_stored,
                &converted.quarantined,
                path.as_deref(),
                parquet_bytes,
            )?;
            Ok(())
        })
        .await
        .map_err(|e| ConvertError::Task(e.to_string()))??;
        Ok((rows, quarantined, bytes))
    }
}
