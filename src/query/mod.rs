//! Analytical queries over the lake with embedded DuckDB.
//!
//! Which Parquet files a query reads comes from the catalog, pruned by the requested batch
//! dates, so only matching partitions are opened. The file list is built by this module from
//! catalog paths; every value a user supplies is a bound parameter, never SQL text. Queries run
//! on the blocking pool over a small set of connections to one in-memory DuckDB database.

pub mod cursor;
pub mod filter;
pub mod tables;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use duckdb::types::{Value, ValueRef};
use duckdb::Connection;
use serde::Serialize;
use tokio::sync::Semaphore;
use utoipa::ToSchema;

use crate::catalog::{Catalog, CatalogError};
use crate::config::QueryConfig;
use crate::ingest::parse::{ColumnKind, EVENTS, FEED_COLUMN};
use crate::lake::Lake;
use crate::metrics::Metrics;
use cursor::{CursorCodec, CursorError, Position};
use filter::EventFilter;

/// Errors answering a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("query engine error: {0}")]
    DuckDb(#[from] duckdb::Error),
    #[error("a background task failed: {0}")]
    Task(String),
    #[error("every query connection is busy (query.max_concurrent = {0}); retry shortly")]
    Busy(usize),
    #[error("the query ran longer than {limit_ms} ms (query.timeout_ms) and was stopped; narrow since/until or add filters")]
    TimedOut { limit_ms: u64 },
    #[error("the query would read {files} Parquet files, more than query.max_scan_files ({max}); narrow since/until")]
    TooLarge { files: usize, max: usize },
    #[error(transparent)]
    Cursor(#[from] CursorError),
}

/// How fresh an answer is, and how much of the lake it read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Freshness {
    /// The newest batch stored in the events table (any feed), ISO 8601 UTC; null for an empty
    /// lake.
    #[schema(example = "2015-02-18T23:45:00Z")]
    pub newest_batch: Option<String>,
    /// Seconds between that batch's time and this answer.
    #[schema(example = 840)]
    pub age_seconds: Option<i64>,
    /// Batch-date partitions this answer read.
    #[schema(example = 1)]
    pub partitions_read: usize,
    /// Parquet files this answer read.
    #[schema(example = 4)]
    pub files_read: usize,
}

/// An inclusive range of batch dates; `None` ends are open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DateRange {
    pub since: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
}

/// A dimension that top-N can count over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopDimension {
    /// `EventCode` (CAMEO, text with leading zeros).
    EventCode,
    /// `ActionGeo_CountryCode` (FIPS 10-4).
    ActionCountry,
}

impl TopDimension {
    /// The column counted.
    pub fn column(self) -> &'static str {
        match self {
            Self::EventCode => "EventCode",
            Self::ActionCountry => "ActionGeo_CountryCode",
        }
    }

    /// The same dimension of the generic top-N.
    pub fn dimension(self) -> Dimension {
        match self {
            Self::EventCode => Dimension::EventCode,
            Self::ActionCountry => Dimension::ActionCountry,
        }
    }
}

/// One row of a top-N answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct KeyCount {
    /// The code, exactly as stored (leading zeros kept).
    #[schema(example = "010")]
    pub key: String,
    /// Number of events.
    #[schema(example = 1234)]
    pub n: i64,
}

/// Tone statistics over events.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ToneStats {
    /// False when no event matched (the other numbers are then 0 and nulls).
    pub available: bool,
    /// Events with a tone.
    pub n: i64,
    pub avg_tone: Option<f64>,
    pub min_tone: Option<f64>,
    pub max_tone: Option<f64>,
}

/// Search matches, newest batch first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResult {
    /// Rows returned (at most the limit).
    pub count: usize,
    /// Events with GDELT's column names and `feed`; `Day` as `YYYY-MM-DD`, `DATEADDED` as
    /// ISO 8601 UTC.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    pub freshness: Freshness,
}

/// The order of an event listing. Ties are broken by feed and GlobalEventID (unique per
/// feed), so the order is total and pages never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// `-dateadded` (the default): newest batch first.
    DateAddedDesc,
    /// `dateadded`: oldest batch first.
    DateAddedAsc,
    /// `-day`: latest event date first.
    DayDesc,
    /// `day`: earliest event date first.
    DayAsc,
}

impl Sort {
    /// Every accepted `sort=` value.
    pub const NAMES: [(&'static str, Sort); 4] = [
        ("-dateadded", Self::DateAddedDesc),
        ("dateadded", Self::DateAddedAsc),
        ("-day", Self::DayDesc),
        ("day", Self::DayAsc),
    ];

    fn key_sql(self) -> &'static str {
        match self {
            Self::DateAddedDesc | Self::DateAddedAsc => {
                "coalesce(epoch_ms(\"DATEADDED\"), -9223372036854775807)"
            }
            Self::DayDesc | Self::DayAsc => {
                "coalesce(date_diff('day', DATE '1970-01-01', \"Day\"), -9223372036854775807)"
            }
        }
    }

    fn descending(self) -> bool {
        matches!(self, Self::DateAddedDesc | Self::DayDesc)
    }
}

/// A request for a page of events.
#[derive(Debug, Clone)]
pub struct EventsRequest {
    pub filter: EventFilter,
    pub sort: Sort,
    pub limit: usize,
    /// The `cursor=` of the previous page, as given.
    pub cursor: Option<String>,
    /// Columns to return (names from the events schema and `feed`); empty = all.
    pub fields: Vec<&'static str>,
    /// Whether to count every match (one more scan).
    pub total: bool,
    /// For exports: the most rows to stream (0 = every match).
    pub export_limit: usize,
}

/// A page of events.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventsPage {
    /// Rows in this page.
    pub count: usize,
    /// Every match of the filters, when `total=true` was asked.
    pub total: Option<i64>,
    /// Pass as `cursor=` with the same filters and sort for the next page; null on the last.
    pub next_cursor: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    pub freshness: Freshness,
}

/// What a volume is counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Events (rows).
    Events,
    /// The sum of `NumMentions`.
    Mentions,
    /// The sum of `NumArticles`.
    Articles,
    /// The sum of `NumSources`.
    Sources,
}

impl Measure {
    /// Every accepted `count=` value.
    pub const NAMES: [(&'static str, Measure); 4] = [
        ("events", Self::Events),
        ("mentions", Self::Mentions),
        ("articles", Self::Articles),
        ("sources", Self::Sources),
    ];

    fn sql(self) -> &'static str {
        match self {
            Self::Events => "count(*)",
            Self::Mentions => "coalesce(sum(\"NumMentions\"), 0)",
            Self::Articles => "coalesce(sum(\"NumArticles\"), 0)",
            Self::Sources => "coalesce(sum(\"NumSources\"), 0)",
        }
    }
}

/// A time-series bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Min15,
    Hour,
    Day,
    Week,
    Month,
}

impl Bucket {
    /// Every accepted `bucket=` value.
    pub const NAMES: [(&'static str, Bucket); 5] = [
        ("15min", Self::Min15),
        ("hour", Self::Hour),
        ("day", Self::Day),
        ("week", Self::Week),
        ("month", Self::Month),
    ];

    fn sql(self) -> &'static str {
        match self {
            Self::Min15 => "time_bucket(INTERVAL '15 minutes', \"DATEADDED\")",
            Self::Hour => "date_trunc('hour', \"DATEADDED\")",
            Self::Day => "date_trunc('day', \"DATEADDED\")",
            // ISO weeks, starting on Monday.
            Self::Week => "date_trunc('week', \"DATEADDED\")",
            Self::Month => "date_trunc('month', \"DATEADDED\")",
        }
    }
}

/// One bucket of a time series.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// The bucket's start, ISO 8601 UTC.
    #[schema(example = "2015-02-18T23:00:00Z")]
    pub bucket: String,
    /// Volume, as `count=` says.
    #[schema(example = 2271)]
    pub n: i64,
    /// Events in the bucket (equal to `n` when counting events).
    pub events: i64,
    /// Mean `AvgTone` of the bucket's events.
    pub avg_tone: Option<f64>,
}

/// A dimension of the generic top-N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    EventCode,
    EventBase,
    EventRoot,
    QuadClass,
    ActionCountry,
    Actor1Country,
    Actor2Country,
    SourceDomain,
}

impl Dimension {
    /// Every accepted `dimension=` value.
    pub const NAMES: [(&'static str, Dimension); 8] = [
        ("event_code", Self::EventCode),
        ("event_base", Self::EventBase),
        ("event_root", Self::EventRoot),
        ("quad_class", Self::QuadClass),
        ("action_country", Self::ActionCountry),
        ("actor1_country", Self::Actor1Country),
        ("actor2_country", Self::Actor2Country),
        ("source_domain", Self::SourceDomain),
    ];

    /// The column (or derived field) counted.
    pub fn field(self) -> &'static str {
        match self {
            Self::EventCode => "EventCode",
            Self::EventBase => "EventBaseCode",
            Self::EventRoot => "EventRootCode",
            Self::QuadClass => "QuadClass",
            Self::ActionCountry => "ActionGeo_CountryCode",
            Self::Actor1Country => "Actor1CountryCode",
            Self::Actor2Country => "Actor2CountryCode",
            Self::SourceDomain => "SOURCEURL host",
        }
    }

    /// The code system of the keys: countries are FIPS 10-4 for places and CAMEO for actors,
    /// never mixed in one answer.
    pub fn code_system(self) -> Option<&'static str> {
        match self {
            Self::EventCode | Self::EventBase | Self::EventRoot => Some("CAMEO event"),
            Self::QuadClass => Some("GDELT quad class"),
            Self::ActionCountry => Some("FIPS 10-4"),
            Self::Actor1Country | Self::Actor2Country => Some("CAMEO country"),
            Self::SourceDomain => None,
        }
    }

    fn key_sql(self) -> &'static str {
        match self {
            Self::EventCode => "\"EventCode\"",
            Self::EventBase => "\"EventBaseCode\"",
            Self::EventRoot => "\"EventRootCode\"",
            Self::QuadClass => "CAST(\"QuadClass\" AS VARCHAR)",
            Self::ActionCountry => "\"ActionGeo_CountryCode\"",
            Self::Actor1Country => "\"Actor1CountryCode\"",
            Self::Actor2Country => "\"Actor2CountryCode\"",
            Self::SourceDomain => {
                "nullif(regexp_extract(lower(\"SOURCEURL\"), '^[a-z][a-z0-9+.-]*://(www\\.)?([^/:?#]+)', 2), '')"
            }
        }
    }
}

/// The query engine.
pub struct QueryEngine {
    connections: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    queue_timeout: Duration,
    timeout: Duration,
    max_scan_files: usize,
    catalog: Arc<Catalog>,
    lake: Lake,
    metrics: Arc<Metrics>,
    cursors: CursorCodec,
    /// Analytics answers by query, with the catalog generation they were computed at.
    cache: Mutex<std::collections::HashMap<String, CacheEntry>>,
}

struct CacheEntry {
    generation: u64,
    value: Arc<dyn std::any::Any + Send + Sync>,
    freshness: Freshness,
}

/// Most analytics answers kept; the cache starts afresh when full.
const CACHE_ENTRIES: usize = 1024;

/// The files a query reads, as a DuckDB table expression, and what the answer will say of them.
struct Scan {
    source: String,
    freshness: Freshness,
}

impl QueryEngine {
    /// Opens an in-memory DuckDB database with `query.max_concurrent` connections of
    /// `query.threads` threads each; cursors are signed with a key kept in the catalog.
    ///
    /// # Errors
    /// DuckDB cannot start, or the catalog cannot give the cursor key.
    pub fn open(
        catalog: Arc<Catalog>,
        lake: Lake,
        metrics: Arc<Metrics>,
        config: &QueryConfig,
    ) -> Result<Self, QueryError> {
        let first = Connection::open_in_memory()?;
        first.execute_batch(&format!(
            "SET threads = {}; SET enable_progress_bar = false;",
            config.threads
        ))?;
        let mut connections = Vec::with_capacity(config.max_concurrent);
        for _ in 1..config.max_concurrent {
            connections.push(first.try_clone()?);
        }
        connections.push(first);
        let cursors = CursorCodec::new(catalog.secret("cursor_key")?);
        Ok(Self {
            connections: Arc::new(Mutex::new(connections)),
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            max_concurrent: config.max_concurrent,
            queue_timeout: Duration::from_millis(config.queue_timeout_ms),
            timeout: Duration::from_millis(config.timeout_ms),
            max_scan_files: config.max_scan_files,
            catalog,
            lake,
            metrics,
            cursors,
            cache: Mutex::default(),
        })
    }

    /// The answer to `key` as computed since the lake last changed, or `compute`'s, kept for
    /// next time. The freshness's age is of this moment either way.
    async fn cached<T, Fut>(&self, key: String, compute: Fut) -> Result<(T, Freshness), QueryError>
    where
        T: Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(T, Freshness), QueryError>>,
    {
        let generation = self.catalog.generation();
        let hit = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.get(&key).and_then(|entry| {
                let value = entry.value.downcast_ref::<T>()?;
                (entry.generation == generation).then(|| (value.clone(), entry.freshness.clone()))
            })
        };
        if let Some((value, mut freshness)) = hit {
            self.metrics.query_cache.with_label_values(&["hit"]).inc();
            freshness.age_seconds = freshness.newest_batch.as_deref().and_then(|n| {
                let newest = chrono::NaiveDateTime::parse_from_str(n, "%Y-%m-%dT%H:%M:%SZ").ok()?;
                Some(
                    (chrono::Utc::now().naive_utc() - newest)
                        .num_seconds()
                        .max(0),
                )
            });
            return Ok((value, freshness));
        }
        self.metrics.query_cache.with_label_values(&["miss"]).inc();
        let (value, freshness) = compute.await?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(
            key,
            CacheEntry {
                generation,
                value: Arc::new(value.clone()),
                freshness: freshness.clone(),
            },
        );
        Ok((value, freshness))
    }

    /// The files of a table (by its listing kind: `export`, `mentions`, `gkg`) for `range`, with
    /// the freshness of an answer over them.
    /// `options` are extra `read_parquet` options (`, name = value`...).
    async fn scan(
        &self,
        kind: &'static str,
        options: &'static str,
        range: DateRange,
    ) -> Result<Scan, QueryError> {
        let catalog = self.catalog.clone();
        let since = range.since.map(|d| d.format("%Y-%m-%d").to_string());
        let until = range.until.map(|d| d.format("%Y-%m-%d").to_string());
        let (files, newest) = tokio::task::spawn_blocking(move || {
            let files = catalog.lake_files(kind, since.as_deref(), until.as_deref())?;
            let newest = catalog.newest_batch(kind)?;
            Ok::<_, CatalogError>((files, newest))
        })
        .await
        .map_err(|e| QueryError::Task(e.to_string()))??;
        if files.len() > self.max_scan_files {
            return Err(QueryError::TooLarge {
                files: files.len(),
                max: self.max_scan_files,
            });
        }
        let mut partitions: Vec<&str> = files.iter().map(|f| f.batch_date.as_str()).collect();
        partitions.dedup();
        let freshness = Freshness {
            newest_batch: newest.map(|n| n.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            age_seconds: newest.map(|n| (chrono::Utc::now().naive_utc() - n).num_seconds().max(0)),
            partitions_read: partitions.len(),
            files_read: files.len(),
        };
        let source = if files.is_empty() {
            String::new()
        } else {
            let list = files
                .iter()
                .map(|f| sql_string(&self.lake.absolute(&f.parquet_path).to_string_lossy()))
                .collect::<Vec<_>>()
                .join(", ");
            // Partition folders are named `date=...`: hive partitioning would add a `date` column
            // that shadows GKG's own `DATE` (names are case-insensitive in DuckDB).
            format!("read_parquet([{list}], hive_partitioning = false{options})")
        };
        Ok(Scan { source, freshness })
    }

    /// Runs `work` with a connection over the events files of `range`, off the async threads,
    /// within the time limit. `work` is not called when no file matches; `empty` is returned
    /// instead.
    async fn run<T, F>(
        &self,
        range: DateRange,
        empty: T,
        work: F,
    ) -> Result<(T, Freshness), QueryError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T, QueryError> + Send + 'static,
    {
        self.run_on("export", "", range, empty, work).await
    }

    /// `run` over the files of the table of listing kind `kind`, read with `read_parquet`
    /// options `options`.
    async fn run_on<T, F>(
        &self,
        kind: &'static str,
        options: &'static str,
        range: DateRange,
        empty: T,
        work: F,
    ) -> Result<(T, Freshness), QueryError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T, QueryError> + Send + 'static,
    {
        self.metrics.queries_running.inc();
        let _running = RunningGuard(&self.metrics);
        let _permit = tokio::time::timeout(self.queue_timeout, self.permits.acquire())
            .await
            .map_err(|_| QueryError::Busy(self.max_concurrent))?
            .expect("the semaphore is never closed");
        // Pinned before the file list is read, kept until DuckDB is done with the files.
        let pin = self.lake.pin();
        let scan = self.scan(kind, options, range).await?;
        if scan.source.is_empty() {
            return Ok((empty, scan.freshness));
        }
        let conn = self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .expect("a permit guarantees a free connection");
        let interrupt = conn.interrupt_handle();
        let source = scan.source;
        let mut task = tokio::task::spawn_blocking(move || {
            let _pin = pin;
            let result = work(&conn, &source);
            (conn, result)
        });
        let mut timed_out = false;
        let joined = match tokio::time::timeout(self.timeout, &mut task).await {
            Ok(joined) => joined,
            Err(_) => {
                // DuckDB stops at its next check; the connection is then free again.
                timed_out = true;
                interrupt.interrupt();
                task.await
            }
        };
        let (conn, result) = joined.map_err(|e| QueryError::Task(e.to_string()))?;
        self.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        if timed_out {
            return Err(QueryError::TimedOut {
                limit_ms: self.timeout.as_millis() as u64,
            });
        }
        Ok((result?, scan.freshness))
    }

    /// Events whose actor names, geo full names or SOURCEURL contain `text` (any case), newest
    /// batch first, at most `limit`. No text matches every event.
    ///
    /// # Errors
    /// Catalog or DuckDB failures, a busy pool, the time or scan limit.
    pub async fn search(
        &self,
        text: Option<String>,
        range: DateRange,
        limit: usize,
    ) -> Result<SearchResult, QueryError> {
        let filter = EventFilter {
            batch: range,
            text,
            ..EventFilter::default()
        };
        let (rows, freshness) = self
            .run(range, Vec::new(), move |conn, source| {
                let (condition, mut params) = filter.to_sql();
                let columns = select_list(&[]);
                let sql = format!(
                    "SELECT {columns} FROM {source} WHERE {condition} \
                     ORDER BY \"DATEADDED\" DESC, \"GlobalEventID\" DESC LIMIT ?"
                );
                params.push(Value::BigInt(limit as i64));
                let mut stmt = conn.prepare(&sql)?;
                let mut rows = stmt.query(duckdb::params_from_iter(params))?;
                let names = column_names(&[]);
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(json_row(row, &names)?);
                }
                Ok(out)
            })
            .await?;
        Ok(SearchResult {
            count: rows.len(),
            rows,
            freshness,
        })
    }

    /// A page of events matching `request.filter`, in `request.sort` order, after its cursor.
    ///
    /// # Errors
    /// A cursor this server did not issue for these filters and sort; catalog or DuckDB
    /// failures, a busy pool, the time or scan limit.
    pub async fn events(&self, request: EventsRequest) -> Result<EventsPage, QueryError> {
        let fingerprint = fingerprint(&request);
        let after = match &request.cursor {
            Some(cursor) => Some(self.cursors.decode(cursor, &fingerprint)?),
            None => None,
        };
        let range = request.filter.partitions();
        let empty = (Vec::new(), None, if request.total { Some(0) } else { None });
        if request.filter.is_empty_range() {
            let (_, freshness) = self.run(range, (), |_, _| Ok(())).await?;
            return Ok(EventsPage {
                count: 0,
                total: empty.2,
                next_cursor: None,
                rows: Vec::new(),
                freshness,
            });
        }
        let limit = request.limit;
        let ((rows, last, total), freshness) = self
            .run(range, empty, move |conn, source| {
                let (condition, params) = request.filter.to_sql();
                let key = request.sort.key_sql();
                let id = ID_KEY;
                let dir = if request.sort.descending() { "DESC" } else { "ASC" };
                let mut page_params = params.clone();
                let mut page_condition = condition.clone();
                if let Some(p) = &after {
                    let (sql, more) = after_sql(request.sort, p);
                    page_condition.push_str(" AND ");
                    page_condition.push_str(&sql);
                    page_params.extend(more);
                }
                let columns = select_list(&request.fields);
                let sql = format!(
                    "SELECT {columns}, {key} AS \"__key\", \"feed\" AS \"__feed\", {id} AS \"__id\" \
                     FROM {source} WHERE {page_condition} \
                     ORDER BY \"__key\" {dir}, \"__feed\" {dir}, \"__id\" {dir} LIMIT ?"
                );
                page_params.push(Value::BigInt(limit as i64 + 1));
                let names = column_names(&request.fields);
                let mut stmt = conn.prepare(&sql)?;
                let mut rows = stmt.query(duckdb::params_from_iter(page_params))?;
                let mut out = Vec::new();
                let mut last = None;
                let mut more = false;
                while let Some(row) = rows.next()? {
                    if out.len() == limit {
                        more = true;
                        break;
                    }
                    out.push(json_row(row, &names)?);
                    last = Some(position_of(row, names.len())?);
                }
                let total = if request.total {
                    let sql = format!("SELECT count(*) FROM {source} WHERE {condition}");
                    Some(conn.query_row(&sql, duckdb::params_from_iter(params), |r| r.get(0))?)
                } else {
                    None
                };
                Ok((out, last.filter(|_| more), total))
            })
            .await?;
        Ok(EventsPage {
            count: rows.len(),
            total,
            next_cursor: last.map(|p| self.cursors.encode(&p, &fingerprint)),
            rows,
            freshness,
        })
    }

    /// Every event matching `request` (after its cursor, at most its limit when it has one),
    /// in its order, streamed as `format` while DuckDB produces it: memory holds a record batch
    /// or two, however many rows there are. The connection stays taken until the stream ends.
    ///
    /// # Errors
    /// As `events`, before the first byte; an error after it ends the stream early.
    pub async fn export(
        &self,
        request: EventsRequest,
        format: ExportFormat,
    ) -> Result<(ExportStream, Freshness), QueryError> {
        let fingerprint = fingerprint(&request);
        let after = match &request.cursor {
            Some(cursor) => Some(self.cursors.decode(cursor, &fingerprint)?),
            None => None,
        };
        self.metrics.queries_running.inc();
        let running = OwnedRunningGuard(self.metrics.clone());
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| QueryError::Busy(self.max_concurrent))?
            .expect("the semaphore is never closed");
        // Pinned before the file list is read, kept until the last byte is produced.
        let pin = self.lake.pin();
        let scan = self.scan("export", "", request.filter.partitions()).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let conn = self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .expect("a permit guarantees a free connection");
        let interrupt = conn.interrupt_handle();
        let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
        let timeout = self.timeout;
        // The time limit counts the query's own time: waiting for a slow client to take the
        // chunks already produced pushes the deadline back (see `ChannelWriter`).
        let clock = Arc::new(Mutex::new(ExportClock {
            deadline: tokio::time::Instant::now() + timeout,
            waiting: false,
        }));
        let watched = clock.clone();
        tokio::spawn(async move {
            loop {
                let wake = {
                    let clock = watched.lock().unwrap_or_else(|p| p.into_inner());
                    if clock.waiting {
                        // Waiting on the client: look again later.
                        tokio::time::Instant::now() + Duration::from_millis(100)
                    } else if clock.deadline <= tokio::time::Instant::now() {
                        interrupt.interrupt();
                        break;
                    } else {
                        clock.deadline
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => {}
                    _ = &mut done_rx => break,
                }
            }
        });
        let connections = self.connections.clone();
        let source = scan.source;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _running = running;
            let _pin = pin;
            let sink = ChannelWriter::new(tx.clone(), clock);
            let result = write_export(&conn, &source, &request, after.as_ref(), format, sink);
            if let Err(e) = result {
                let message = match e {
                    QueryError::DuckDb(ref d) if d.to_string().contains("INTERRUPT") => {
                        QueryError::TimedOut {
                            limit_ms: timeout.as_millis() as u64,
                        }
                        .to_string()
                    }
                    other => other.to_string(),
                };
                let _ = tx.blocking_send(Err(std::io::Error::other(message)));
            }
            let _ = done_tx.send(());
            connections
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        });
        Ok((rx, scan.freshness))
    }

    /// The `limit` most frequent non-empty values of `dimension` among events matching
    /// `filter`, by `measure`, largest first, ties by key.
    ///
    /// # Errors
    /// Catalog or DuckDB failures, a busy pool, the time or scan limit.
    pub async fn top_by(
        &self,
        dimension: Dimension,
        measure: Measure,
        filter: EventFilter,
        limit: usize,
    ) -> Result<(Vec<KeyCount>, Freshness), QueryError> {
        let cache_key = format!("top|{dimension:?}|{measure:?}|{limit}|{filter:?}");
        let compute = self.run(filter.partitions(), Vec::new(), move |conn, source| {
            let (condition, mut params) = filter.to_sql();
            let key = dimension.key_sql();
            let value = measure.sql();
            let sql = format!(
                "SELECT key, n FROM (SELECT {key} AS key, {value} AS n FROM {source} \
                 WHERE {condition} GROUP BY 1) WHERE key IS NOT NULL AND key <> '' \
                 ORDER BY n DESC, key ASC LIMIT ?"
            );
            params.push(Value::BigInt(limit as i64));
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(duckdb::params_from_iter(params), |r| {
                Ok(KeyCount {
                    key: r.get(0)?,
                    n: r.get(1)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        });
        self.cached(cache_key, compute).await
    }

    /// Volume (by `measure`) and mean tone of events matching `filter`, per `bucket` of batch
    /// time (`DATEADDED`), oldest first; empty buckets are absent.
    ///
    /// # Errors
    /// Catalog or DuckDB failures, a busy pool, the time or scan limit.
    pub async fn series(
        &self,
        bucket: Bucket,
        measure: Measure,
        filter: EventFilter,
    ) -> Result<(Vec<SeriesPoint>, Freshness), QueryError> {
        let cache_key = format!("series|{bucket:?}|{measure:?}|{filter:?}");
        let compute = self.run(filter.partitions(), Vec::new(), move |conn, source| {
            let (condition, params) = filter.to_sql();
            let sql = format!(
                "SELECT strftime({b}, '%Y-%m-%dT%H:%M:%SZ') AS b, {n} AS n, count(*) AS events, \
                 avg(\"AvgTone\") AS tone FROM {source} WHERE {condition} AND \"DATEADDED\" IS NOT NULL \
                 GROUP BY {b} ORDER BY {b}",
                b = bucket.sql(),
                n = measure.sql()
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(duckdb::params_from_iter(params), |r| {
                Ok(SeriesPoint {
                    bucket: r.get(0)?,
                    n: r.get(1)?,
                    events: r.get(2)?,
                    avg_tone: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        });
        self.cached(cache_key, compute).await
    }

    /// The `limit` most frequent non-empty values of `dimension` among events matching
    /// `filter`, most frequent first, ties by key.
    ///
    /// # Errors
    /// Catalog or DuckDB failures, a busy pool, the time or scan limit.
    pub async fn top_filtered(
        &self,
        dimension: TopDimension,
        filter: EventFilter,
        limit: usize,
    ) -> Result<(Vec<KeyCount>, Freshness), QueryError> {
        self.top_by(dimension.dimension(), Measure::Events, filter, limit)
            .await
    }

    /// Count, mean, minimum and maximum of `AvgTone`.
    ///
    /// # Errors
    /// Catalog or DuckDB failures, a busy pool, the time or scan limit.
    pub async fn tone(&self, filter: EventFilter) -> Result<(ToneStats, Freshness), QueryError> {
        let empty = ToneStats {
            available: false,
            n: 0,
            avg_tone: None,
            min_tone: None,
            max_tone: None,
        };
        let cache_key = format!("tone|{filter:?}");
        let compute = self.run(filter.partitions(), empty, move |conn, source| {
            let (condition, params) = filter.to_sql();
            let sql = format!(
                "SELECT count(\"AvgTone\"), avg(\"AvgTone\"), min(\"AvgTone\"), max(\"AvgTone\") \
                 FROM {source} WHERE {condition}"
            );
            Ok(conn.query_row(&sql, duckdb::params_from_iter(params), |r| {
                let n: i64 = r.get(0)?;
                Ok(ToneStats {
                    available: n > 0,
                    n,
                    avg_tone: r.get(1)?,
                    min_tone: r.get(2)?,
                    max_tone: r.get(3)?,
                })
            })?)
        });
        self.cached(cache_key, compute).await
    }
}

/// What a cursor is bound to: the filters and the sort.
fn fingerprint(request: &EventsRequest) -> String {
    use md5::{Digest, Md5};
    let text = format!("{:?}|{:?}", request.filter, request.sort);
    format!("{:x}", Md5::digest(text.as_bytes()))[..16].to_owned()
}

/// The condition selecting rows after `after` in `sort` order, with its parameters.
fn after_sql(sort: Sort, after: &Position) -> (String, Vec<Value>) {
    let key = sort.key_sql();
    let id = ID_KEY;
    let cmp = if sort.descending() { "<" } else { ">" };
    (
        format!(
            "({key} {cmp} ? OR ({key} = ? AND (\"feed\" {cmp} ? OR (\"feed\" = ? AND {id} {cmp} ?))))"
        ),
        vec![
            Value::BigInt(after.key),
            Value::BigInt(after.key),
            Value::Text(after.feed.clone()),
            Value::Text(after.feed.clone()),
            Value::BigInt(after.id),
        ],
    )
}

/// The GlobalEventID as a sort key (nulls first).
const ID_KEY: &str = "coalesce(\"GlobalEventID\", -9223372036854775807)";

/// Formats an export can be streamed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line.
    Ndjson,
    /// Comma-separated, with a header line.
    Csv,
    /// A zstd Parquet file.
    Parquet,
    /// An Arrow IPC stream.
    Arrow,
}

impl ExportFormat {
    /// The media type answered.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Parquet => "application/vnd.apache.parquet",
            Self::Arrow => "application/vnd.apache.arrow.stream",
        }
    }
}

/// The chunks of an export, as they are produced; an `Err` ends it early.
pub type ExportStream = tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>;

/// An export's time limit, shared by the writer and the timer that interrupts DuckDB.
struct ExportClock {
    /// When the query is interrupted unless it has finished.
    deadline: tokio::time::Instant,
    /// Set while the writer waits for the client to take chunks: not the query's time.
    waiting: bool,
}

/// A `Write` that sends what is written down a channel in chunks of about 64 KiB; it fails once
/// the receiver is gone (the client left), which stops the query. Time spent waiting for the
/// client to make room moves the export's deadline back by as much.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    buffer: Vec<u8>,
    clock: Arc<Mutex<ExportClock>>,
}

impl ChannelWriter {
    const CHUNK: usize = 64 * 1024;

    fn new(
        tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
        clock: Arc<Mutex<ExportClock>>,
    ) -> Self {
        Self {
            tx,
            buffer: Vec::with_capacity(Self::CHUNK),
            clock,
        }
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, ExportClock> {
        self.clock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(Self::CHUNK),
        ));
        let waiting = std::time::Instant::now();
        self.clock().waiting = true;
        let sent = self
            .tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client left"));
        let mut clock = self.clock();
        clock.deadline += waiting.elapsed();
        clock.waiting = false;
        sent
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= Self::CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// Runs an export query and writes its record batches as `format` into `sink`.
fn write_export(
    conn: &Connection,
    source: &str,
    request: &EventsRequest,
    after: Option<&Position>,
    format: ExportFormat,
    mut sink: ChannelWriter,
) -> Result<(), QueryError> {
    use std::io::Write;
    let (mut condition, mut params) = request.filter.to_sql();
    if let Some(after) = after {
        let (sql, more) = after_sql(request.sort, after);
        condition.push_str(" AND ");
        condition.push_str(&sql);
        params.extend(more);
    }
    // Text formats carry the same values as the JSON answer (dates `YYYY-MM-DD`, timestamps
    // ISO 8601 UTC); the typed ones keep DuckDB's types.
    let columns = match format {
        ExportFormat::Ndjson | ExportFormat::Csv => select_list(&request.fields),
        ExportFormat::Parquet | ExportFormat::Arrow => raw_select_list(&request.fields),
    };
    let dir = if request.sort.descending() {
        "DESC"
    } else {
        "ASC"
    };
    let key = request.sort.key_sql();
    // With no file, the same columns from an empty relation keep the export well formed.
    let from = if source.is_empty() || request.filter.is_empty_range() {
        empty_events_relation()
    } else {
        source.to_owned()
    };
    let limit = if request.export_limit > 0 {
        format!(" LIMIT {}", request.export_limit)
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT {columns} FROM {from} WHERE {condition} \
         ORDER BY {key} {dir}, \"feed\" {dir}, {ID_KEY} {dir}{limit}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let batches = stmt.stream_arrow(duckdb::params_from_iter(params))?;
    let schema = batches.get_schema();
    let io = |e: std::io::Error| QueryError::Task(format!("writing the export: {e}"));
    let arrow_err =
        |e: arrow::error::ArrowError| QueryError::Task(format!("writing the export: {e}"));
    match format {
        ExportFormat::Ndjson => {
            // Nulls written out, as in the JSON answer: every row has every field.
            let mut writer = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::LineDelimited>(&mut sink);
            for batch in batches {
                writer.write(&batch?).map_err(arrow_err)?;
            }
            writer.finish().map_err(arrow_err)?;
        }
        ExportFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut sink);
            let mut wrote = false;
            for batch in batches {
                writer.write(&batch?).map_err(arrow_err)?;
                wrote = true;
            }
            drop(writer);
            if !wrote {
                let header: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                writeln!(sink, "{}", header.join(",")).map_err(io)?;
            }
        }
        ExportFormat::Parquet => {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(
                    parquet::basic::ZstdLevel::try_new(3).expect("a valid level"),
                ))
                // Small row groups: the writer holds one whole row group before writing it.
                .set_max_row_group_row_count(Some(64 * 1024))
                .build();
            let mut writer =
                parquet::arrow::ArrowWriter::try_new(&mut sink, schema.clone(), Some(props))
                    .map_err(|e| QueryError::Task(format!("writing the export: {e}")))?;
            for batch in batches {
                writer
                    .write(&batch?)
                    .map_err(|e| QueryError::Task(format!("writing the export: {e}")))?;
            }
            writer
                .close()
                .map_err(|e| QueryError::Task(format!("writing the export: {e}")))?;
        }
        ExportFormat::Arrow => {
            let mut writer =
                arrow::ipc::writer::StreamWriter::try_new(&mut sink, &schema).map_err(arrow_err)?;
            for batch in batches {
                writer.write(&batch?).map_err(arrow_err)?;
            }
            writer.finish().map_err(arrow_err)?;
        }
    }
    sink.flush().map_err(io)?;
    Ok(())
}

/// An empty relation with the events table's columns and types.
fn empty_events_relation() -> String {
    let columns = event_columns()
        .map(|(name, kind)| {
            let ty = match kind {
                ColumnKind::Text => "VARCHAR",
                ColumnKind::Int => "BIGINT",
                ColumnKind::Float => "DOUBLE",
                ColumnKind::Date8 => "DATE",
                ColumnKind::Flag => "BOOLEAN",
                ColumnKind::Timestamp14 | ColumnKind::Timestamp8 => "TIMESTAMP",
            };
            format!("CAST(NULL AS {ty}) AS \"{name}\"")
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("(SELECT {columns} WHERE FALSE)")
}

/// The SELECT list for `fields` (all when empty), with stored types.
fn raw_select_list(fields: &[&'static str]) -> String {
    column_names(fields)
        .iter()
        .map(|name| format!("\"{name}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A page row's place in the walk: the sort key, feed and number a page query selects after
/// the row's `columns` visible columns.
fn position_of(row: &duckdb::Row<'_>, columns: usize) -> duckdb::Result<Position> {
    Ok(Position {
        key: row.get(columns)?,
        feed: row.get(columns + 1)?,
        id: row.get(columns + 2)?,
    })
}

/// Every column a row can return: the events schema, then `feed`.
pub fn event_columns() -> impl Iterator<Item = (&'static str, ColumnKind)> {
    EVENTS
        .columns
        .iter()
        .copied()
        .chain([(FEED_COLUMN, ColumnKind::Text)])
}

/// The names `select_list` returns, in its order.
fn column_names(fields: &[&'static str]) -> Vec<&'static str> {
    event_columns()
        .map(|(n, _)| n)
        .filter(|n| fields.is_empty() || fields.contains(n))
        .collect()
}

/// The SELECT list for `fields` (all when empty): dates as `YYYY-MM-DD`, timestamps as ISO 8601
/// UTC, the rest as stored.
fn select_list(fields: &[&'static str]) -> String {
    event_columns()
        .filter(|(name, _)| fields.is_empty() || fields.contains(name))
        .map(|(name, kind)| match kind {
            ColumnKind::Date8 => format!("strftime(\"{name}\", '%Y-%m-%d') AS \"{name}\""),
            ColumnKind::Timestamp14 | ColumnKind::Timestamp8 => {
                format!("strftime(\"{name}\", '%Y-%m-%dT%H:%M:%SZ') AS \"{name}\"")
            }
            _ => format!("\"{name}\""),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn json_row(
    row: &duckdb::Row<'_>,
    names: &[&'static str],
) -> Result<serde_json::Map<String, serde_json::Value>, QueryError> {
    let mut object = serde_json::Map::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        object.insert((*name).to_owned(), to_json(row.get_ref(i)?));
    }
    Ok(object)
}

/// Decrements the running-queries gauge when a streamed export ends.
struct OwnedRunningGuard(Arc<Metrics>);

impl Drop for OwnedRunningGuard {
    fn drop(&mut self) {
        self.0.queries_running.dec();
    }
}

/// Decrements the running-queries gauge when the query ends, however it ends.
struct RunningGuard<'a>(&'a Metrics);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.queries_running.dec();
    }
}

/// A SQL string literal.
fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn to_json(value: ValueRef<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        ValueRef::Null => J::Null,
        ValueRef::Boolean(b) => J::Bool(b),
        ValueRef::TinyInt(v) => J::from(v),
        ValueRef::SmallInt(v) => J::from(v),
        ValueRef::Int(v) => J::from(v),
        ValueRef::BigInt(v) => J::from(v),
        ValueRef::UTinyInt(v) => J::from(v),
        ValueRef::USmallInt(v) => J::from(v),
        ValueRef::UInt(v) => J::from(v),
        ValueRef::UBigInt(v) => J::from(v),
        ValueRef::Float(v) => J::from(f64::from(v)),
        ValueRef::Double(v) => J::from(v),
        ValueRef::Text(bytes) => J::String(String::from_utf8_lossy(bytes).into_owned()),
        other => J::String(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::StoredFile;
    use crate::ingest::ids::IdRuns;
    use crate::ingest::listing::parse_line;

    /// An engine over a catalog that lists one stored file, so queries reach DuckDB.
    fn engine(config: &QueryConfig) -> (tempfile::TempDir, QueryEngine) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::open(&dir.path().join("catalog.sqlite")).unwrap());
        let lake = Lake::open(dir.path()).unwrap();
        let file =
            parse_line("1 00000000000000000000000000000000 http://x/20150218230000.export.CSV.zip")
                .unwrap()
                .unwrap();
        catalog.record_seen(std::slice::from_ref(&file)).unwrap();
        catalog.claim(&file.name, 5).unwrap();
        catalog
            .mark_ingested(&StoredFile {
                name: &file.name,
                feed: "english",
                rows_stored: 1,
                rows_duplicate: 0,
                quarantined: &[],
                parquet_path: Some("events/date=2015-02-18/20150218230000.parquet"),
                parquet_bytes: 1,
                event_ids: &IdRuns::new(),
            })
            .unwrap();
        let engine = QueryEngine::open(catalog, lake, Arc::new(Metrics::new()), config).unwrap();
        (dir, engine)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_query_is_interrupted_and_a_full_pool_answers_busy() {
        let config = QueryConfig {
            max_concurrent: 1,
            threads: 1,
            queue_timeout_ms: 0,
            timeout_ms: 300,
            max_scan_files: 10,
        };
        let (_dir, engine) = engine(&config);
        let slow = engine.run(DateRange::default(), 0i64, |conn, _| {
            Ok(
                conn.query_row("SELECT count(*) FROM range(10000000000000)", [], |r| {
                    r.get(0)
                })?,
            )
        });
        let while_busy = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            engine.run(DateRange::default(), 0, |_, _| Ok(1)).await
        };
        let started = std::time::Instant::now();
        let (slow, while_busy) = tokio::join!(slow, while_busy);
        assert!(
            matches!(slow, Err(QueryError::TimedOut { limit_ms: 300 })),
            "{slow:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
        assert!(
            matches!(while_busy, Err(QueryError::Busy(1))),
            "{while_busy:?}"
        );
        // The interrupted connection serves the next query.
        let (value, freshness) = engine
            .run(DateRange::default(), 0, |conn, _| {
                Ok(conn.query_row("SELECT 41 + 1", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(value, 42);
        assert_eq!(freshness.files_read, 1);
        assert_eq!(
            freshness.newest_batch.as_deref(),
            Some("2015-02-18T23:00:00Z")
        );
    }
}
