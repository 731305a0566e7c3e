//! Ingestion: source listing → download → unzip → parse → write, and the catalog updates.
//!
//! `Ingestor::plan_latest` decides which files a run needs; `Ingestor::ingest_file` takes one
//! listed file all the way into the lake. A file is claimed in the catalog before any work, so
//! two runs never ingest the same batch twice; a stored batch is a no-op, a failed one is
//! retried. Nothing here knows about HTTP serving or job queues.

pub mod convert;
pub mod fetch;
pub mod ids;
pub mod listing;
pub mod parse;

use std::sync::Arc;
use std::time::Instant;

use slog::{error, info, o, warn, Logger};

use chrono::NaiveDate;

use crate::catalog::{Catalog, CatalogError, Claim, FileOutcome, FileResult};
use crate::lake::Lake;
use crate::metrics::Metrics;
use convert::ConvertError;
use fetch::{FetchError, Source};
use listing::{BatchDateRange, Feed, FileKind, LatestBatches, ListedFile, Selection};

/// Errors that stop a whole run (as opposed to one file, which is recorded and skipped).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("reading the listing: {0}")]
    Listing(#[from] FetchError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("a background task failed: {0}")]
    Task(String),
    #[error("{listing} names no GDELT file ({bad_lines} line(s) not understood{first}); is source.base_url a GDELT mirror?")]
    EmptyListing {
        listing: &'static str,
        bad_lines: u64,
        first: String,
    },
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
    #[error("column count changed: every line has {found} fields, expected {expected}; nothing stored, the zip is kept at {kept} for re-processing")]
    Schema {
        found: usize,
        expected: usize,
        kept: String,
    },
}

impl FileError {
    fn stage(&self) -> &'static str {
        match self {
            Self::Fetch(_) => "download",
            Self::Convert(ConvertError::Lake(_)) => "write",
            Self::Convert(_) | Self::Schema { .. } => "convert",
            Self::Catalog(_) => "catalog",
        }
    }
}

/// What scheduled and triggered runs take, and how often a file is tried.
pub struct IngestSettings {
    pub kinds: Vec<FileKind>,
    pub feeds: Vec<Feed>,
    pub max_attempts: u32,
}

/// Does the work of ingestion.
#[derive(Clone)]
pub struct Ingestor {
    source: Source,
    kinds: Vec<FileKind>,
    feeds: Vec<Feed>,
    max_attempts: u32,
    lake: Lake,
    catalog: Arc<Catalog>,
    metrics: Arc<Metrics>,
    log: Logger,
    /// Held from checking a file's event ids against the stored ones until the file is
    /// recorded, so two files bringing the same event cannot both store it.
    unique_commits: Arc<tokio::sync::Mutex<()>>,
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
        settings: IngestSettings,
        lake: Lake,
        catalog: Arc<Catalog>,
        metrics: Arc<Metrics>,
        log: Logger,
    ) -> Self {
        Self {
            source,
            kinds: settings.kinds,
            feeds: settings.feeds,
            max_attempts: settings.max_attempts,
            lake,
            catalog,
            metrics,
            log,
            unique_commits: Arc::default(),
        }
    }

    /// The files of the configured tables and feeds in the `n` newest batches of each feed,
    /// plus failed files due for another attempt, recorded in the catalog as seen.
    /// `lastupdate.txt` is enough for the newest batch; more need `masterfilelist.txt`.
    ///
    /// # Errors
    /// A listing cannot be fetched, or the catalog cannot record it.
    pub async fn plan_latest(&self, n: usize) -> Result<Plan, IngestError> {
        let mut plan = Plan::default();
        for &feed in &self.feeds {
            let mut selection = None;
            if let (1, Some(last_update)) = (n, feed.last_update()) {
                let last = self
                    .source
                    .read_listing(feed, last_update, &self.kinds, || LatestBatches::new(1))
                    .await?;
                if !last.files.is_empty() {
                    selection = Some(last);
                }
            }
            let selection = match selection {
                Some(s) => s,
                None => {
                    self.source
                        .read_listing(feed, feed.master_listing(), &self.kinds, || {
                            LatestBatches::new(n)
                        })
                        .await?
                }
            };
            plan.merge(self.record(selection, feed, &self.kinds, None).await?);
        }
        let catalog = self.catalog.clone();
        let kinds: Vec<&'static str> = self.kinds.iter().map(|k| k.as_str()).collect();
        let max_attempts = self.max_attempts;
        let retry = blocking(move || catalog.retryable(&kinds, max_attempts)).await??;
        for line in retry {
            if let Ok(Some(file)) = listing::parse_line(&line) {
                if self.feeds.contains(&file.feed)
                    && !plan.files.iter().any(|f| f.name == file.name)
                {
                    plan.files.push(file);
                }
            }
        }
        Ok(plan)
    }

    /// Every file of `kinds` in `feeds` whose batch date lies in `from..=to`, from the feeds'
    /// master listings, recorded in the catalog as seen. Days a listing covers entirely are
    /// recorded as listed, so the coverage report can tell slots the source never published.
    ///
    /// # Errors
    /// A listing cannot be fetched, or the catalog cannot record it.
    pub async fn plan_range(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        kinds: &[FileKind],
        feeds: &[Feed],
    ) -> Result<Plan, IngestError> {
        let mut plan = Plan::default();
        for &feed in feeds {
            let selection = self
                .source
                .read_listing(feed, feed.master_listing(), kinds, || {
                    BatchDateRange::new(from, to)
                })
                .await?;
            // Days before the newest listed batch's day are complete in this listing.
            let complete = selection
                .newest_listed
                .and_then(|newest| newest.date().pred_opt())
                .map(|last_whole_day| (from, to.min(last_whole_day)));
            plan.merge(self.record(selection, feed, kinds, complete).await?);
        }
        Ok(plan)
    }

    async fn record(
        &self,
        selection: Selection,
        feed: Feed,
        kinds: &[FileKind],
        listed_days: Option<(NaiveDate, NaiveDate)>,
    ) -> Result<Plan, IngestError> {
        if selection.newest_listed.is_none() {
            return Err(IngestError::EmptyListing {
                listing: feed.master_listing(),
                bad_lines: selection.bad_lines,
                first: selection
                    .first_bad_line
                    .map(|l| format!("; first: {l}"))
                    .unwrap_or_default(),
            });
        }
        let mut warnings = Vec::new();
        if selection.bad_lines > 0 {
            warn!(self.log, "listing lines not understood"; "feed" => feed.as_str(),
                "count" => selection.bad_lines, "first" => selection.first_bad_line.as_deref());
            warnings.push(format!(
                "{}: {} listing line(s) not understood and skipped; first: {}",
                feed.master_listing(),
                selection.bad_lines,
                selection.first_bad_line.as_deref().unwrap_or_default()
            ));
        }
        // A listing names files of its own feed only; anything else is not ours to take.
        let files: Vec<ListedFile> = selection
            .files
            .into_iter()
            .filter(|f| f.feed == feed)
            .collect();
        let catalog = self.catalog.clone();
        let recorded = files.clone();
        let kinds: Vec<&'static str> = kinds.iter().map(|k| k.as_str()).collect();
        blocking(move || -> Result<(), CatalogError> {
            catalog.record_seen(&recorded)?;
            if let Some((from, to)) = listed_days {
                let days: Vec<String> = from
                    .iter_days()
                    .take_while(|d| *d <= to)
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .collect();
                catalog.record_listed_days(feed.as_str(), &kinds, &days)?;
            }
            Ok(())
        })
        .await??;
        Ok(Plan { files, warnings })
    }

    /// Ingests one listed file unless it is stored already, being ingested elsewhere, or has
    /// failed too often. Failures are recorded in the catalog and returned as a `Failed`
    /// result, never raised.
    pub async fn ingest_file(&self, file: &ListedFile, job_id: i64) -> FileResult {
        let started = Instant::now();
        let log = self
            .log
            .new(o!("job_id" => job_id, "batch" => file.name.clone()));
        let table = file.kind.layout().name;
        let result = |outcome, stored: Option<&Stored>, error: Option<String>| FileResult {
            file: file.name.clone(),
            outcome,
            rows_stored: stored.map(|s| s.rows as i64),
            rows_quarantined: stored.map(|s| s.quarantined as i64),
            rows_duplicate: stored.map(|s| s.duplicates as i64),
            bytes: stored.map(|s| s.bytes as i64),
            error,
            duration_ms: Some(started.elapsed().as_millis() as i64),
        };
        let catalog = self.catalog.clone();
        let name = file.name.clone();
        let max_attempts = self.max_attempts;
        let claim = match blocking(move || catalog.claim(&name, max_attempts)).await {
            Ok(Ok(claim)) => claim,
            Ok(Err(e)) => return result(FileOutcome::Failed, None, Some(e.to_string())),
            Err(e) => return result(FileOutcome::Failed, None, Some(e.to_string())),
        };
        let skipped = match claim {
            Claim::Claimed => None,
            Claim::AlreadyIngested => Some((FileOutcome::AlreadyIngested, "already_ingested", None)),
            Claim::Running => Some((FileOutcome::InProgressElsewhere, "in_progress_elsewhere", None)),
            Claim::GaveUp { attempts, error } => Some((
                FileOutcome::Failed,
                "gave_up",
                Some(format!(
                    "not retried: failed {attempts} times (ingest.max_attempts); last error: {error}"
                )),
            )),
        };
        if let Some((outcome, label, error)) = skipped {
            self.metrics
                .ingest_files
                .with_label_values(&[table, label])
                .inc();
            info!(log, "batch skipped"; "outcome" => label);
            return result(outcome, None, error);
        }

        match self.store(file).await {
            Ok(stored) => {
                let m = &self.metrics;
                m.ingest_files.with_label_values(&[table, "ingested"]).inc();
                m.ingest_rows
                    .with_label_values(&[table])
                    .inc_by(stored.rows);
                m.ingest_quarantined
                    .with_label_values(&[table])
                    .inc_by(stored.quarantined);
                m.ingest_duplicates
                    .with_label_values(&[table])
                    .inc_by(stored.duplicates);
                m.ingest_bytes
                    .with_label_values(&[table])
                    .inc_by(stored.bytes);
                m.observe_batch(table, file.timestamp.and_utc().timestamp() as f64);
                info!(log, "batch ingested"; "table" => table, "rows" => stored.rows,
                    "quarantined" => stored.quarantined, "duplicates" => stored.duplicates,
                    "bytes" => stored.bytes,
                    "duration_ms" => started.elapsed().as_millis() as u64);
                result(FileOutcome::Ingested, Some(&stored), None)
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
                error!(log, "batch failed"; "table" => table, "error" => &reason, "stage" => e.stage(),
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

    /// Download, verify, convert, commit the Parquet file, record it.
    async fn store(&self, file: &ListedFile) -> Result<Stored, FileError> {
        let download = self.source.download(file, self.lake.tmp_dir()).await?;
        let layout = file.kind.layout();
        let rows = convert::Rows {
            layout,
            format: file.row_format(),
            feed: file.feed.as_str(),
        };
        let expected_fields = rows.format.fields(layout).len();
        let target = Lake::batch_path(layout.name, file.timestamp, file.feed.name_infix());
        let converted = convert::convert(
            download.file.path(),
            &file.member_name(),
            rows,
            &self.lake,
            &target,
        )
        .await?;
        if let Some(found) = changed_column_count(&converted, expected_fields) {
            // Not bad rows but a different file format: keep the zip to re-process it once
            // the schema is known, and store nothing from it.
            let kept = self
                .lake
                .keep_aside(download.file, &file.name)
                .map_err(ConvertError::from)?;
            return Err(FileError::Schema {
                found,
                expected: expected_fields,
                kept: kept.display().to_string(),
            });
        }
        drop(download);
        let lines_read = converted.lines_read;
        // Rows with a unique key are checked against those stored and recorded under one lock.
        let _guard = match layout.unique_key {
            Some(_) => Some(self.unique_commits.clone().lock_owned().await),
            None => None,
        };
        let catalog = self.catalog.clone();
        let lake = self.lake.clone();
        let name = file.name.clone();
        let feed = file.feed.as_str();
        let key_column = layout
            .unique_key
            .and_then(|key| layout.columns.iter().position(|c| c.0 == key));
        let stored = tokio::task::spawn_blocking(move || -> Result<Stored, FileError> {
            let mut converted = converted;
            let mut duplicates = converted.duplicates;
            if let Some(column) = key_column {
                let stored = catalog.stored_event_ids(feed, &converted.keys)?;
                if !stored.is_empty() {
                    if let Some(sink) = converted.sink.take() {
                        let (sink, dropped) = sink
                            .retain(&lake, |batch| keep_new_keys(batch, column, &stored))
                            .map_err(ConvertError::from)?;
                        debug_assert_eq!(dropped, stored.len());
                        converted.sink = sink;
                    }
                    duplicates += stored.len();
                    converted.rows_stored -= stored.len();
                    converted.keys = converted.keys.difference(&stored);
                }
            }
            let (path, parquet_bytes) = match converted.sink {
                Some(sink) => (Some(target), sink.commit().map_err(ConvertError::from)?),
                None => (None, 0),
            };
            catalog.mark_ingested(&crate::catalog::StoredFile {
                name: &name,
                feed,
                rows_stored: converted.rows_stored,
                rows_duplicate: duplicates,
                quarantined: &converted.quarantined,
                parquet_path: path.as_deref(),
                parquet_bytes,
                event_ids: &converted.keys,
            })?;
            Ok(Stored {
                rows: converted.rows_stored,
                quarantined: converted.quarantined.len() as u64,
                duplicates,
                bytes: 0,
            })
        })
        .await
        .map_err(|e| ConvertError::Task(e.to_string()))??;
        debug_assert_eq!(
            stored.rows + stored.quarantined + stored.duplicates,
            lines_read
        );
        Ok(Stored {
            bytes: file.size,
            ..stored
        })
    }
}

/// Keeps the rows whose key is not in `stored`; a null key is kept.
fn keep_new_keys(
    batch: &arrow::record_batch::RecordBatch,
    column: usize,
    stored: &ids::IdRuns,
) -> Result<arrow::array::BooleanArray, arrow::error::ArrowError> {
    use arrow::array::AsArray;
    let keys = batch
        .column(column)
        .as_primitive_opt::<arrow::datatypes::Int64Type>()
        .ok_or_else(|| arrow::error::ArrowError::SchemaError("the key is not Int64".into()))?;
    Ok(keys
        .iter()
        .map(|key| Some(key.is_none_or(|k| !stored.contains(k))))
        .collect())
}

/// The files a job will ingest, and what it should know about how they were chosen.
#[derive(Default)]
pub struct Plan {
    pub files: Vec<ListedFile>,
    /// For example listing lines that did not parse.
    pub warnings: Vec<String>,
}

impl Plan {
    fn merge(&mut self, other: Plan) {
        self.files.extend(other.files);
        self.warnings.extend(other.warnings);
    }
}

/// What storing one file did.
struct Stored {
    rows: u64,
    quarantined: u64,
    duplicates: u64,
    bytes: u64,
}

/// Lines a file must have before "every line has the same wrong field count" reads as a
/// changed format rather than a few damaged rows.
const CHANGED_FORMAT_MIN_LINES: usize = 3;

/// A file whose every line (at least `CHANGED_FORMAT_MIN_LINES` of them) has the same wrong
/// number of fields has changed format; returns that number.
fn changed_column_count(converted: &convert::Converted, expected: usize) -> Option<usize> {
    if converted.rows_stored > 0
        || converted.duplicates > 0
        || converted.quarantined.len() < CHANGED_FORMAT_MIN_LINES
    {
        return None;
    }
    let counts: Vec<usize> = converted
        .quarantined
        .iter()
        .map(|q| q.raw.split(|&b| b == b'\t').count())
        .collect();
    let first = counts[0];
    (first != expected && counts.iter().all(|c| *c == first)).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse::QuarantinedLine;

    fn all_quarantined(lines: usize, fields: usize) -> convert::Converted {
        convert::Converted {
            sink: None,
            lines_read: lines as u64,
            rows_stored: 0,
            duplicates: 0,
            keys: ids::IdRuns::new(),
            quarantined: (0..lines)
                .map(|i| QuarantinedLine {
                    line_no: i as u64 + 1,
                    reason: format!("{fields} fields, expected 61"),
                    raw: vec!["x"; fields].join("\t").into_bytes(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_file_of_one_or_two_damaged_lines_is_not_a_format_change() {
        assert_eq!(changed_column_count(&all_quarantined(1, 60), 61), None);
        assert_eq!(changed_column_count(&all_quarantined(2, 57), 61), None);
        assert_eq!(changed_column_count(&all_quarantined(3, 57), 61), Some(57));
        let mut mixed = all_quarantined(3, 57);
        mixed.quarantined[1].raw.extend_from_slice(b"\tx");
        assert_eq!(changed_column_count(&mixed, 61), None);
    }
}
