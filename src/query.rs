//! Analytical queries over the lake with embedded DuckDB.
//!
//! Which Parquet files a query reads comes from the catalog, pruned by the requested batch
//! dates, so only matching partitions are opened. The file list is built by this module from
//! catalog paths; every value a user supplies is a bound parameter, never SQL text. Queries run
//! on the blocking pool over a small set of connections to one in-memory DuckDB database.

use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use duckdb::types::ValueRef;
use duckdb::Connection;
use serde::Serialize;
use tokio::sync::Semaphore;
use utoipa::ToSchema;

use crate::catalog::{Catalog, CatalogError};
use crate::ingest::parse::{ColumnKind, EVENTS, FEED_COLUMN};
use crate::lake::Lake;
use crate::metrics::Metrics;

/// Errors answering a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("query engine error: {0}")]
    DuckDb(#[from] duckdb::Error),
    #[error("a background task failed: {0}")]
    Task(String),
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
}

/// The query engine.
pub struct QueryEngine {
    connections: Mutex<Vec<Connection>>,
    permits: Semaphore,
    catalog: Arc<Catalog>,
    lake: Lake,
    metrics: Arc<Metrics>,
}

impl QueryEngine {
    /// Opens an in-memory DuckDB database with `max_concurrent` connections of `threads`
    /// threads each.
    ///
    /// # Errors
    /// DuckDB cannot start.
    pub fn open(
        catalog: Arc<Catalog>,
        lake: Lake,
        metrics: Arc<Metrics>,
        max_concurrent: usize,
        threads: usize,
    ) -> Result<Self, QueryError> {
        let first = Connection::open_in_memory()?;
        first.execute_batch(&format!(
            "SET threads = {threads}; SET enable_progress_bar = false;"
        ))?;
        let mut connections = Vec::with_capacity(max_concurrent);
        for _ in 1..max_concurrent {
            connections.push(first.try_clone()?);
        }
        connections.push(first);
        Ok(Self {
            connections: Mutex::new(connections),
            permits: Semaphore::new(max_concurrent),
            catalog,
            lake,
            metrics,
        })
    }

    /// Runs `work` with a connection and the file list for `range`, off the async threads.
    /// `work` is not called when no file matches; `empty` is returned instead.
    async fn run<T, F>(&self, range: DateRange, empty: T, work: F) -> Result<T, QueryError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T, QueryError> + Send + 'static,
    {
        self.metrics.queries_running.inc();
        let _running = RunningGuard(&self.metrics);
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let catalog = self.catalog.clone();
        let lake = self.lake.clone();
        let since = range.since.map(|d| d.format("%Y-%m-%d").to_string());
        let until = range.until.map(|d| d.format("%Y-%m-%d").to_string());
        let files = tokio::task::spawn_blocking(move || {
            catalog.lake_files("export", since.as_deref(), until.as_deref())
        })
        .await
        .map_err(|e| QueryError::Task(e.to_string()))??;
        if files.is_empty() {
            return Ok(empty);
        }
        let list = files
            .iter()
            .map(|f| sql_string(&lake.absolute(&f.parquet_path).to_string_lossy()))
            .collect::<Vec<_>>()
            .join(", ");
        let source = format!("read_parquet([{list}])");
        let conn = self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .expect("a permit guarantees a free connection");
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = work(&conn, &source);
            (conn, result)
        })
        .await
        .map_err(|e| QueryError::Task(e.to_string()))?;
        self.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        result
    }

    /// Events whose actor names, geo full names or SOURCEURL contain `text` (any case), newest
    /// batch first, at most `limit`. No text matches every event.
    ///
    /// # Errors
    /// Catalog or DuckDB failures.
    pub async fn search(
        &self,
        text: Option<String>,
        range: DateRange,
        limit: usize,
    ) -> Result<SearchResult, QueryError> {
        let empty = SearchResult {
            count: 0,
            rows: Vec::new(),
        };
        self.run(range, empty, move |conn, source| {
            let columns = EVENTS
                .columns
                .iter()
                .map(|(name, kind)| match kind {
                    ColumnKind::Date8 => format!("strftime(\"{name}\", '%Y-%m-%d') AS \"{name}\""),
                    ColumnKind::Timestamp14 => {
                        format!("strftime(\"{name}\", '%Y-%m-%dT%H:%M:%SZ') AS \"{name}\"")
                    }
                    _ => format!("\"{name}\""),
                })
                .chain([format!("\"{FEED_COLUMN}\"")])
                .collect::<Vec<_>>()
                .join(", ");
            const SEARCHED: [&str; 6] = [
                "Actor1Name",
                "Actor2Name",
                "Actor1Geo_FullName",
                "Actor2Geo_FullName",
                "ActionGeo_FullName",
                "SOURCEURL",
            ];
            let needle = text.map(|t| t.to_lowercase());
            let filter = if needle.is_some() {
                let any = SEARCHED
                    .iter()
                    .map(|c| format!("contains(lower(\"{c}\"), ?)"))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                format!("WHERE {any}")
            } else {
                String::new()
            };
            let sql = format!(
                "SELECT {columns} FROM {source} {filter} ORDER BY \"DATEADDED\" DESC, \"GlobalEventID\" DESC LIMIT ?"
            );
            let mut params: Vec<Box<dyn duckdb::ToSql>> = Vec::new();
            if let Some(n) = &needle {
                for _ in SEARCHED {
                    params.push(Box::new(n.clone()));
                }
            }
            params.push(Box::new(limit as i64));
            let mut stmt = conn.prepare(&sql)?;
            let mut rows_out = Vec::new();
            let mut rows = stmt.query(duckdb::params_from_iter(params.iter()))?;
            let names: Vec<String> = EVENTS
                .columns
                .iter()
                .map(|(n, _)| (*n).to_owned())
                .chain([FEED_COLUMN.to_owned()])
                .collect();
            while let Some(row) = rows.next()? {
                let mut object = serde_json::Map::with_capacity(names.len());
                for (i, name) in names.iter().enumerate() {
                    object.insert(name.clone(), to_json(row.get_ref(i)?));
                }
                rows_out.push(object);
            }
            Ok(SearchResult {
                count: rows_out.len(),
                rows: rows_out,
            })
        })
        .await
    }

    /// The `limit` most frequent non-empty values of `dimension`, most frequent first, ties
    /// by key.
    ///
    /// # Errors
    /// Catalog or DuckDB failures.
    pub async fn top(
        &self,
        dimension: TopDimension,
        range: DateRange,
        limit: usize,
    ) -> Result<Vec<KeyCount>, QueryError> {
        self.run(range, Vec::new(), move |conn, source| {
            let column = dimension.column();
            let sql = format!(
                "SELECT \"{column}\" AS key, count(*) AS n FROM {source} \
                 WHERE \"{column}\" IS NOT NULL AND \"{column}\" <> '' \
                 GROUP BY key ORDER BY n DESC, key ASC LIMIT ?"
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map([limit as i64], |r| {
                Ok(KeyCount {
                    key: r.get(0)?,
                    n: r.get(1)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Count, mean, minimum and maximum of `AvgTone`.
    ///
    /// # Errors
    /// Catalog or DuckDB failures.
    pub async fn tone(&self, range: DateRange) -> Result<ToneStats, QueryError> {
        let empty = ToneStats {
            available: false,
            n: 0,
            avg_tone: None,
            min_tone: None,
            max_tone: None,
        };
        self.run(range, empty, move |conn, source| {
            let sql = format!(
                "SELECT count(\"AvgTone\"), avg(\"AvgTone\"), min(\"AvgTone\"), max(\"AvgTone\") FROM {source}"
            );
            Ok(conn.query_row(&sql, [], |r| {
                let n: i64 = r.get(0)?;
                Ok(ToneStats {
                    available: n > 0,
                    n,
                    avg_tone: r.get(1)?,
                    min_tone: r.get(2)?,
                    max_tone: r.get(3)?,
                })
            })?)
        })
        .await
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
