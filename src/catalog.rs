//! The SQLite catalog: every listed file seen, what became of it, quarantined lines, and jobs.
//!
//! The catalog is the source of truth for what the lake holds: queries read the Parquet paths
//! it lists, never a directory listing. A file's outcome (status, counts, path and quarantined
//! lines) is recorded in one transaction. Every method is blocking; async callers run them on
//! the blocking pool. One connection behind a mutex serialises writers in this process, and the
//! data directory lock keeps other processes out.

use std::path::Path;
use std::sync::Mutex;

use chrono::{SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ingest::ids::IdRuns;
use crate::ingest::listing::ListedFile;
use crate::ingest::parse::QuarantinedLine;

/// Errors from the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("reading randomness: {0}")]
    Random(#[from] std::io::Error),
    #[error("catalog at {path} has schema version {found}, this build knows {known}")]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
}

type Result<T> = std::result::Result<T, CatalogError>;

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE files (
    name             TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    feed             TEXT NOT NULL,
    batch_ts         TEXT NOT NULL,
    batch_date       TEXT NOT NULL,
    url              TEXT NOT NULL,
    size             INTEGER NOT NULL,
    md5              TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'ingested', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    error            TEXT,
    rows_stored      INTEGER,
    rows_quarantined INTEGER,
    parquet_path     TEXT,
    parquet_bytes    INTEGER,
    first_seen_at    TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    ingested_at      TEXT
);
CREATE INDEX files_kind_status_date ON files (kind, status, batch_date);
CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    file_name   TEXT NOT NULL REFERENCES files (name),
    line_no     INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    raw_line    TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX quarantine_file ON quarantine (file_name, line_no);
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    params      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    total       INTEGER NOT NULL DEFAULT 0,
    finished    INTEGER NOT NULL DEFAULT 0,
    warnings    TEXT NOT NULL DEFAULT '[]',
    error       TEXT,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT
);
CREATE TABLE job_files (
    job_id           INTEGER NOT NULL REFERENCES jobs (id),
    file_name        TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    rows_stored      INTEGER,
    rows_quarantined INTEGER,
    bytes            INTEGER,
    error            TEXT,
    duration_ms      INTEGER,
    PRIMARY KEY (job_id, file_name)
);
-- Days whose every slot the source's master listing was read for, per kind: a slot with no
-- listed file on such a day was never published upstream.
CREATE TABLE listed_days (
    feed      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    day       TEXT NOT NULL,
    listed_at TEXT NOT NULL,
    PRIMARY KEY (feed, kind, day)
);
",
    r"
ALTER TABLE files ADD COLUMN rows_duplicate INTEGER;
ALTER TABLE job_files ADD COLUMN rows_duplicate INTEGER;
-- The GlobalEventIDs stored per feed, as runs of consecutive ids, each with the file that
-- stored it. Stored ids are unique per feed, so the runs of one feed never overlap.
CREATE TABLE event_ids (
    feed      TEXT NOT NULL,
    first_id  INTEGER NOT NULL,
    last_id   INTEGER NOT NULL,
    file_name TEXT NOT NULL REFERENCES files (name),
    PRIMARY KEY (feed, first_id)
) WITHOUT ROWID;
CREATE INDEX event_ids_file ON event_ids (file_name);
-- Values the service keeps across restarts, such as the key signing pagination cursors.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
",
    r"
-- Set when retention dropped the file's rows from the lake: the file stays known (so it is
-- not fetched again, and its event ids still count as stored) but is no longer read.
ALTER TABLE files ADD COLUMN expired_at TEXT;
-- Set when compaction merged the file's rows into its day's file (then parquet_path).
ALTER TABLE files ADD COLUMN compacted_at TEXT;
-- What a job that is not about files (lake maintenance) reports, as JSON.
ALTER TABLE jobs ADD COLUMN result TEXT;
",
    r"
-- Every query asks for the newest stored batch of a table (its freshness): an index that
-- answers MAX(batch_ts) without reading every stored file's row.
CREATE INDEX files_kind_status_ts ON files (kind, status, batch_ts);
",
];

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What happened to one file in one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileOutcome {
    /// Downloaded, verified and stored by this job.
    Ingested,
    /// Stored earlier; nothing was done.
    AlreadyIngested,
    /// Another job is ingesting it right now; this job left it alone.
    InProgressElsewhere,
    /// The attempt failed; the reason is in `error`.
    Failed,
}

impl FileOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ingested => "ingested",
            Self::AlreadyIngested => "already_ingested",
            Self::InProgressElsewhere => "in_progress_elsewhere",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "ingested" => Self::Ingested,
            "already_ingested" => Self::AlreadyIngested,
            "in_progress_elsewhere" => Self::InProgressElsewhere,
            _ => Self::Failed,
        }
    }
}

/// The result of one file in a job, as stored and as served.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileResult {
    /// File name, e.g. `20150218230000.export.CSV.zip`.
    pub file: String,
    pub outcome: FileOutcome,
    pub rows_stored: Option<i64>,
    pub rows_quarantined: Option<i64>,
    /// Rows not stored because their GlobalEventID is stored already in their feed (or came
    /// earlier in the same file).
    pub rows_duplicate: Option<i64>,
    /// Zip bytes downloaded and verified.
    pub bytes: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
}

/// A job and its progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobRecord {
    pub id: i64,
    /// `latest` (the N newest batches) or `backfill` (a range of batch dates).
    pub kind: String,
    /// The job's parameters as given.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// `queued`, `running`, `succeeded` or `failed` (one or more files failed, or planning did).
    pub state: String,
    /// Files the job planned.
    pub total: i64,
    /// Files finished so far, whatever their outcome.
    pub finished: i64,
    /// Files that failed so far.
    pub failed: i64,
    /// Rows stored by this job so far.
    pub rows_stored: i64,
    /// Lines quarantined by this job so far.
    pub rows_quarantined: i64,
    /// Duplicate events skipped by this job so far.
    pub rows_duplicate: i64,
    /// Zip bytes downloaded by this job so far.
    pub bytes: i64,
    /// Things the job noticed that did not stop it, such as listing lines it could not parse.
    pub warnings: Vec<String>,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Per-file results, in completion order.
    pub files: Vec<FileResult>,
    /// The report of a `maintenance` job (days compacted, partitions dropped), once finished.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
}

/// The outcome of trying to claim a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller now owns the file.
    Claimed,
    AlreadyIngested,
    /// Another run is ingesting it.
    Running,
    /// It failed `attempts` times, the most allowed; `error` is the last reason.
    GaveUp {
        attempts: i64,
        error: String,
    },
}

/// What the catalog knows of one day of one kind of file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayCounts {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Whether the master listing was read for the whole day.
    pub listing_read: bool,
    pub listed: i64,
    pub ingested: i64,
    pub failed: i64,
    pub pending: i64,
    pub rows_stored: i64,
    pub rows_quarantined: i64,
    /// Ingested files whose rows retention has dropped since.
    pub expired: i64,
}

/// The stored files of one day, table (listing kind) and feed, to merge into one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionGroup {
    /// Listing kind: `export`, `mentions` or `gkg`.
    pub kind: String,
    pub feed: String,
    /// `YYYY-MM-DD`.
    pub batch_date: String,
    /// The distinct lake-relative Parquet paths, oldest batch first.
    pub paths: Vec<String>,
    /// Rows stored in them, per the catalog.
    pub rows: i64,
}

/// A stored Parquet file of the lake, for building query file lists.
#[derive(Debug, Clone)]
pub struct LakeFile {
    pub parquet_path: String,
    pub batch_date: String,
}

/// What storing one file did, recorded in one transaction.
pub struct StoredFile<'a> {
    pub name: &'a str,
    pub feed: &'a str,
    pub rows_stored: u64,
    pub rows_duplicate: u64,
    pub quarantined: &'a [QuarantinedLine],
    /// Lake-relative path of the Parquet file; `None` when no row was stored.
    pub parquet_path: Option<&'a str>,
    pub parquet_bytes: u64,
    /// The GlobalEventIDs stored (empty for tables other than events).
    pub event_ids: &'a IdRuns,
}

/// Counts of what the catalog holds, for health and metrics.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct CatalogSummary {
    pub files_ingested: i64,
    pub files_failed: i64,
    pub files_pending: i64,
    pub rows_stored: i64,
    pub rows_quarantined: i64,
    /// Newest ingested batch, `YYYYMMDDHHMMSS`.
    pub newest_batch: Option<String>,
}

/// The catalog database.
pub struct Catalog {
    conn: Mutex<Connection>,
    /// Bumped whenever the set of stored files changes, so caches know when to let go.
    generation: std::sync::atomic::AtomicU64,
}

impl Catalog {
    /// Opens (creating and migrating) the catalog at `path`, and returns files left `running`
    /// by a crashed process to `pending` and its unfinished jobs to `failed`.
    ///
    /// # Errors
    /// The database cannot be opened or migrated, or is newer than this build.
    pub fn open(path: &Path) -> Result<Self> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if applied > known {
            return Err(CatalogError::TooNew {
                path: path.display().to_string(),
                found: applied,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        let at = now();
        conn.execute(
            "UPDATE files SET status = 'pending', updated_at = ?1 WHERE status = 'running'",
            [&at],
        )?;
        conn.execute(
            "UPDATE jobs SET state = 'failed', error = 'interrupted: the process stopped before the job finished', \
             finished_at = ?1 WHERE state IN ('queued', 'running')",
            [&at],
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Opens an existing catalog for reading only: no migration, no recovery, no lock, so it
    /// can be read while another process ingests.
    ///
    /// # Errors
    /// The database does not exist, cannot be opened, or has another schema version.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if applied != known {
            return Err(CatalogError::TooNew {
                path: path.display().to_string(),
                found: applied,
                known,
            });
        }
        Ok(Self {
            conn: Mutex::new(conn),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// A number that changes whenever the lake's stored files change.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back on drop), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records listed files; a file already known keeps its status. Its listed size and md5 are
    /// refreshed unless it is already ingested.
    ///
    /// # Errors
    /// Database errors.
    pub fn record_seen(&self, files: &[ListedFile]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO files (name, kind, feed, batch_ts, batch_date, url, size, md5, first_seen_at, updated_at) \
                 VALUES (?1, ?2, ?9, ?3, ?4, ?5, ?6, ?7, ?8, ?8) \
                 ON CONFLICT (name) DO UPDATE SET url = excluded.url, size = excluded.size, md5 = excluded.md5, \
                 updated_at = excluded.updated_at WHERE files.status <> 'ingested'",
            )?;
            let at = now();
            for f in files {
                stmt.execute(params![
                    f.name,
                    f.kind.as_str(),
                    f.batch_ts(),
                    f.batch_date(),
                    f.url,
                    f.size as i64,
                    f.md5,
                    at,
                    f.feed.as_str()
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Claims a file for ingestion, so that it is ingested by one run only. A pending file is
    /// claimed; a failed one too while it has had fewer than `max_attempts` attempts.
    ///
    /// # Errors
    /// Database errors.
    pub fn claim(&self, name: &str, max_attempts: u32) -> Result<Claim> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx.execute(
            "UPDATE files SET status = 'running', attempts = attempts + 1, updated_at = ?2 \
             WHERE name = ?1 AND (status = 'pending' OR (status = 'failed' AND attempts < ?3))",
            params![name, now(), max_attempts],
        )?;
        let claim = if changed == 1 {
            Claim::Claimed
        } else {
            let (status, attempts, error): (String, i64, Option<String>) = tx.query_row(
                "SELECT status, attempts, error FROM files WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            match status.as_str() {
                "ingested" => Claim::AlreadyIngested,
                "running" => Claim::Running,
                _ => Claim::GaveUp {
                    attempts,
                    error: error.unwrap_or_default(),
                },
            }
        };
        tx.commit()?;
        Ok(claim)
    }

    /// The current status of a file, if known.
    ///
    /// # Errors
    /// Database errors.
    pub fn file_status(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT status FROM files WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Failed files of `kinds` that may be tried again now: fewer than `max_attempts`
    /// attempts, and the last one longer ago than 2^attempts minutes (at most a day), as the
    /// listing lines they came from.
    ///
    /// # Errors
    /// Database errors.
    pub fn retryable(&self, kinds: &[&str], max_attempts: u32) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT size || ' ' || md5 || ' ' || url FROM files \
             WHERE kind = ?1 AND status = 'failed' AND attempts < ?2 \
             AND julianday(updated_at) + MIN(1 << MIN(attempts, 11), 1440) / 1440.0 <= julianday('now') \
             ORDER BY batch_ts",
        )?;
        let mut lines = Vec::new();
        for kind in kinds {
            let rows = stmt.query_map(params![kind, max_attempts], |r| r.get::<_, String>(0))?;
            lines.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
        }
        Ok(lines)
    }

    /// Records that the master listing was read for every slot of these days, per kind.
    ///
    /// # Errors
    /// Database errors.
    pub fn record_listed_days(&self, feed: &str, kinds: &[&str], days: &[String]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT OR REPLACE INTO listed_days (feed, kind, day, listed_at) VALUES (?4, ?1, ?2, ?3)",
            )?;
            let at = now();
            for kind in kinds {
                for day in days {
                    stmt.execute(params![kind, day, at, feed])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Per-day counts of one kind of file between two `YYYY-MM-DD` dates (inclusive), for the
    /// coverage report: days with nothing known are absent.
    ///
    /// # Errors
    /// Database errors.
    pub fn coverage(
        &self,
        feed: &str,
        kind: &str,
        since: &str,
        until: &str,
    ) -> Result<Vec<DayCounts>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "WITH days AS ( \
                 SELECT batch_date AS day FROM files WHERE feed = ?4 AND kind = ?1 AND batch_date BETWEEN ?2 AND ?3 \
                 UNION SELECT day FROM listed_days WHERE feed = ?4 AND kind = ?1 AND day BETWEEN ?2 AND ?3) \
             SELECT d.day, \
                 EXISTS (SELECT 1 FROM listed_days l WHERE l.feed = ?4 AND l.kind = ?1 AND l.day = d.day), \
                 COUNT(f.name), \
                 COALESCE(SUM(f.status = 'ingested'), 0), \
                 COALESCE(SUM(f.status = 'failed'), 0), \
                 COALESCE(SUM(f.status IN ('pending', 'running')), 0), \
                 COALESCE(SUM(CASE WHEN f.status = 'ingested' THEN f.rows_stored END), 0), \
                 COALESCE(SUM(CASE WHEN f.status = 'ingested' THEN f.rows_quarantined END), 0), \
                 COALESCE(SUM(f.expired_at IS NOT NULL), 0) \
             FROM days d LEFT JOIN files f ON f.feed = ?4 AND f.kind = ?1 AND f.batch_date = d.day \
             GROUP BY d.day ORDER BY d.day",
        )?;
        let rows = stmt.query_map(params![kind, since, until, feed], |r| {
            Ok(DayCounts {
                day: r.get(0)?,
                listing_read: r.get(1)?,
                listed: r.get(2)?,
                ingested: r.get(3)?,
                failed: r.get(4)?,
                pending: r.get(5)?,
                rows_stored: r.get(6)?,
                rows_quarantined: r.get(7)?,
                expired: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Of `ids`, those already stored in `feed`'s events.
    ///
    /// # Errors
    /// Database errors.
    pub fn stored_event_ids(&self, feed: &str, ids: &IdRuns) -> Result<IdRuns> {
        let conn = self.conn();
        // Runs of a feed never overlap, so the runs meeting first..=last are the last one
        // starting at or before `first` and those starting inside.
        let mut before = conn.prepare_cached(
            "SELECT first_id, last_id FROM event_ids WHERE feed = ?1 AND first_id <= ?2 \
             ORDER BY first_id DESC LIMIT 1",
        )?;
        let mut inside = conn.prepare_cached(
            "SELECT first_id, last_id FROM event_ids WHERE feed = ?1 AND first_id > ?2 \
             AND first_id <= ?3 ORDER BY first_id",
        )?;
        let mut stored = std::collections::BTreeMap::new();
        for (first, last) in ids.runs() {
            let run = |r: &rusqlite::Row<'_>| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?));
            if let Some((f, l)) = before.query_row(params![feed, first], run).optional()? {
                if l >= first {
                    stored.insert(f, l);
                }
            }
            for row in inside.query_map(params![feed, first, last], run)? {
                let (f, l) = row?;
                stored.insert(f, l);
            }
        }
        let mut runs = IdRuns::new();
        for (first, last) in stored {
            runs.push_run(first, last);
        }
        Ok(runs.intersection(ids))
    }

    /// Records a stored file, its quarantined lines and its event ids in one transaction.
    ///
    /// # Errors
    /// Database errors; nothing is recorded then.
    pub fn mark_ingested(&self, file: &StoredFile<'_>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let at = now();
        let name = file.name;
        // A re-ingested file replaces its earlier quarantine records and ids.
        tx.execute("DELETE FROM quarantine WHERE file_name = ?1", [name])?;
        tx.execute("DELETE FROM event_ids WHERE file_name = ?1", [name])?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO quarantine (file_name, line_no, reason, raw_line, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for q in file.quarantined {
                stmt.execute(params![name, q.line_no as i64, q.reason, q.raw, at])?;
            }
            let mut stmt = tx.prepare(
                "INSERT INTO event_ids (feed, first_id, last_id, file_name) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (first, last) in file.event_ids.runs() {
                stmt.execute(params![file.feed, first, last, name])?;
            }
        }
        tx.execute(
            "UPDATE files SET status = 'ingested', error = NULL, rows_stored = ?2, rows_quarantined = ?3, \
             parquet_path = ?4, parquet_bytes = ?5, updated_at = ?6, ingested_at = ?6, rows_duplicate = ?7 \
             WHERE name = ?1",
            params![
                name,
                file.rows_stored as i64,
                file.quarantined.len() as i64,
                file.parquet_path,
                file.parquet_bytes as i64,
                at,
                file.rows_duplicate as i64
            ],
        )?;
        tx.commit()?;
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// The secret named `name`, made of 32 random bytes the first time it is asked for and kept
    /// from then on.
    ///
    /// # Errors
    /// Database errors, or no randomness available.
    pub fn secret(&self, name: &str) -> Result<Vec<u8>> {
        let conn = self.conn();
        let existing: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(value) = existing {
            return Ok(value);
        }
        let mut value = vec![0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut value)?;
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)",
            params![name, value],
        )?;
        Ok(value)
    }

    /// Records a failed attempt with its reason.
    ///
    /// # Errors
    /// Database errors.
    pub fn mark_failed(&self, name: &str, reason: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE files SET status = 'failed', error = ?2, updated_at = ?3 WHERE name = ?1",
            params![name, reason, now()],
        )?;
        Ok(())
    }

    /// Stored files of a listing kind (`export`, `mentions`, `gkg`) whose batch date lies in
    /// the inclusive range, each once (a compacted day's file holds many listed files), oldest
    /// first. Dates are `YYYY-MM-DD`; expired files are left out.
    ///
    /// # Errors
    /// Database errors.
    pub fn lake_files(
        &self,
        kind: &str,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<Vec<LakeFile>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT parquet_path, MIN(batch_date) FROM files WHERE kind = ?1 AND status = 'ingested' \
             AND batch_date >= ?2 AND batch_date <= ?3 \
             AND rows_stored > 0 AND expired_at IS NULL \
             GROUP BY parquet_path ORDER BY MIN(batch_ts), parquet_path",
        )?;
        // Open ends as the widest dates, so the index on batch_date serves every range.
        let since = since.unwrap_or("0000-00-00");
        let until = until.unwrap_or("9999-99-99");
        let rows = stmt.query_map(params![kind, since, until], |r| {
            Ok(LakeFile {
                parquet_path: r.get(0)?,
                batch_date: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The days (batch dates in `since..=until`, before `before`) whose stored files of one
    /// kind and feed are more than one Parquet file, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub fn compaction_groups(
        &self,
        since: Option<&str>,
        until: Option<&str>,
        before: &str,
    ) -> Result<Vec<CompactionGroup>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT kind, feed, batch_date, parquet_path, SUM(rows_stored) FROM files \
             WHERE status = 'ingested' AND rows_stored > 0 AND expired_at IS NULL \
             AND (?1 IS NULL OR batch_date >= ?1) AND (?2 IS NULL OR batch_date <= ?2) \
             AND batch_date < ?3 \
             GROUP BY kind, feed, batch_date, parquet_path \
             ORDER BY batch_date, kind, feed, MIN(batch_ts), parquet_path",
        )?;
        let rows = stmt.query_map(params![since, until, before], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        let mut groups: Vec<CompactionGroup> = Vec::new();
        for row in rows {
            let (kind, feed, batch_date, path, n) = row?;
            match groups.last_mut() {
                Some(g) if g.kind == kind && g.feed == feed && g.batch_date == batch_date => {
                    g.paths.push(path);
                    g.rows += n;
                }
                _ => groups.push(CompactionGroup {
                    kind,
                    feed,
                    batch_date,
                    paths: vec![path],
                    rows: n,
                }),
            }
        }
        groups.retain(|g| g.paths.len() > 1);
        Ok(groups)
    }

    /// Points every file stored in `group`'s paths at `merged` instead, in one transaction,
    /// if they still are what `group` says (no file added to or taken from them since).
    /// Returns whether the swap happened; queries see the old files or the new one, never
    /// both or neither.
    ///
    /// # Errors
    /// Database errors; nothing changes then.
    pub fn swap_compacted(
        &self,
        group: &CompactionGroup,
        merged: &str,
        bytes: u64,
    ) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let at = now();
        let mut rows = 0i64;
        {
            let mut stmt = tx.prepare(
                "UPDATE files SET parquet_path = ?1, parquet_bytes = ?2, compacted_at = ?3, updated_at = ?3 \
                 WHERE parquet_path = ?4 AND kind = ?5 AND feed = ?6 AND status = 'ingested' \
                 AND expired_at IS NULL RETURNING rows_stored",
            )?;
            for path in &group.paths {
                let stored = stmt.query_map(
                    params![merged, bytes as i64, at, path, group.kind, group.feed],
                    |r| r.get::<_, i64>(0),
                )?;
                for n in stored {
                    rows += n?;
                }
            }
        }
        if rows != group.rows {
            // Something changed under us: leave everything as it was.
            return Ok(false);
        }
        tx.commit()?;
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(true)
    }

    /// Marks every stored file with a batch date before `before` expired, so queries stop
    /// reading it, and returns the Parquet paths no longer read. The files stay known: they
    /// are not fetched again and their event ids still count as stored.
    ///
    /// # Errors
    /// Database errors; nothing changes then.
    pub fn expire_before(&self, before: &str) -> Result<(i64, Vec<String>)> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let (files, paths) = {
            let mut stmt = tx.prepare(
                "UPDATE files SET expired_at = ?2, updated_at = ?2 \
                 WHERE status = 'ingested' AND expired_at IS NULL AND batch_date < ?1 \
                 RETURNING parquet_path",
            )?;
            let returned =
                stmt.query_map(params![before, now()], |r| r.get::<_, Option<String>>(0))?;
            let mut files = 0i64;
            let mut paths = std::collections::BTreeSet::new();
            for path in returned {
                files += 1;
                paths.extend(path?);
            }
            (files, paths)
        };
        tx.commit()?;
        if files > 0 {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok((files, paths.into_iter().collect()))
    }

    /// Totals over the catalog.
    ///
    /// # Errors
    /// Database errors.
    pub fn summary(&self) -> Result<CatalogSummary> {
        Ok(self.conn().query_row(
            "SELECT \
               COALESCE(SUM(status = 'ingested'), 0), COALESCE(SUM(status = 'failed'), 0), \
               COALESCE(SUM(status IN ('pending', 'running')), 0), \
               COALESCE(SUM(CASE WHEN status = 'ingested' THEN rows_stored END), 0), \
               COALESCE(SUM(CASE WHEN status = 'ingested' THEN rows_quarantined END), 0), \
               MAX(CASE WHEN status = 'ingested' THEN batch_ts END) \
             FROM files",
            [],
            |r| {
                Ok(CatalogSummary {
                    files_ingested: r.get(0)?,
                    files_failed: r.get(1)?,
                    files_pending: r.get(2)?,
                    rows_stored: r.get(3)?,
                    rows_quarantined: r.get(4)?,
                    newest_batch: r.get(5)?,
                })
            },
        )?)
    }

    /// The newest stored batch of a kind of file, if any.
    ///
    /// # Errors
    /// Database errors.
    pub fn newest_batch(&self, kind: &str) -> Result<Option<chrono::NaiveDateTime>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT MAX(batch_ts) FROM files WHERE kind = ?1 AND status = 'ingested'",
        )?;
        let newest: Option<String> = stmt.query_row([kind], |r| r.get(0))?;
        Ok(newest.and_then(|ts| chrono::NaiveDateTime::parse_from_str(&ts, "%Y%m%d%H%M%S").ok()))
    }

    /// Quarantined lines of one file, in line order: (line number, reason, raw line bytes).
    ///
    /// # Errors
    /// Database errors.
    pub fn quarantined(&self, file_name: &str) -> Result<Vec<(i64, String, Vec<u8>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT line_no, reason, raw_line FROM quarantine WHERE file_name = ?1 ORDER BY line_no",
        )?;
        let rows = stmt.query_map([file_name], |r| {
            // Stored as a BLOB: the line's exact bytes, valid UTF-8 or not.
            let raw = match r.get_ref(2)? {
                rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                    t.to_vec()
                }
                _ => Vec::new(),
            };
            Ok((r.get(0)?, r.get(1)?, raw))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Creates a queued job and returns its id.
    ///
    /// # Errors
    /// Database errors.
    pub fn create_job(&self, kind: &str, params: &serde_json::Value) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO jobs (kind, params, state, created_at) VALUES (?1, ?2, 'queued', ?3)",
            params![kind, params.to_string(), now()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Marks a job running from now: it is reading listings, before it knows its files.
    ///
    /// # Errors
    /// Database errors.
    pub fn begin_job(&self, id: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE jobs SET state = 'running', started_at = ?2 WHERE id = ?1",
            params![id, now()],
        )?;
        Ok(())
    }

    /// Records the files a running job planned, and what its listings warned of.
    ///
    /// # Errors
    /// Database errors.
    pub fn start_job(&self, id: i64, total: usize, warnings: &[String]) -> Result<()> {
        self.conn().execute(
            "UPDATE jobs SET state = 'running', total = ?2, warnings = ?3, \
             started_at = COALESCE(started_at, ?4) WHERE id = ?1",
            params![
                id,
                total as i64,
                serde_json::to_string(warnings).unwrap_or_default(),
                now()
            ],
        )?;
        Ok(())
    }

    /// Records one file's result in a job and advances its progress.
    ///
    /// # Errors
    /// Database errors.
    pub fn record_job_file(&self, id: i64, result: &FileResult) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO job_files (job_id, file_name, outcome, rows_stored, rows_quarantined, bytes, error, duration_ms, rows_duplicate) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                id,
                result.file,
                result.outcome.as_str(),
                result.rows_stored,
                result.rows_quarantined,
                result.bytes,
                result.error,
                result.duration_ms,
                result.rows_duplicate
            ],
        )?;
        tx.execute(
            "UPDATE jobs SET finished = finished + 1 WHERE id = ?1",
            [id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Ends a job: `succeeded` without an error, `failed` with one.
    ///
    /// # Errors
    /// Database errors.
    pub fn finish_job(&self, id: i64, error: Option<&str>) -> Result<()> {
        let state = if error.is_some() {
            "failed"
        } else {
            "succeeded"
        };
        self.conn().execute(
            "UPDATE jobs SET state = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
            params![id, state, error, now()],
        )?;
        Ok(())
    }

    /// Ends a job that reports `result` rather than per-file results.
    ///
    /// # Errors
    /// Database errors.
    pub fn finish_job_with_result(
        &self,
        id: i64,
        error: Option<&str>,
        result: &serde_json::Value,
    ) -> Result<()> {
        self.finish_job(id, error)?;
        self.conn().execute(
            "UPDATE jobs SET result = ?2 WHERE id = ?1",
            params![id, result.to_string()],
        )?;
        Ok(())
    }

    /// A job with its per-file results, if it exists.
    ///
    /// # Errors
    /// Database errors.
    pub fn job(&self, id: i64) -> Result<Option<JobRecord>> {
        let conn = self.conn();
        let job = conn
            .query_row(
                "SELECT id, kind, params, state, total, finished, error, created_at, started_at, finished_at, warnings, result \
                 FROM jobs WHERE id = ?1",
                [id],
                |r| {
                    let params: String = r.get(2)?;
                    Ok(JobRecord {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        params: serde_json::from_str(&params).unwrap_or(serde_json::Value::Null),
                        state: r.get(3)?,
                        total: r.get(4)?,
                        finished: r.get(5)?,
                        error: r.get(6)?,
                        created_at: r.get(7)?,
                        started_at: r.get(8)?,
                        finished_at: r.get(9)?,
                        warnings: serde_json::from_str(&r.get::<_, String>(10)?).unwrap_or_default(),
                        failed: 0,
                        rows_stored: 0,
                        rows_quarantined: 0,
                        rows_duplicate: 0,
                        bytes: 0,
                        files: Vec::new(),
                        result: r
                            .get::<_, Option<String>>(11)?
                            .and_then(|text| serde_json::from_str(&text).ok()),
                    })
                },
            )
            .optional()?;
        let Some(mut job) = job else { return Ok(None) };
        let mut stmt = conn.prepare(
            "SELECT file_name, outcome, rows_stored, rows_quarantined, bytes, error, duration_ms, rows_duplicate \
             FROM job_files WHERE job_id = ?1 ORDER BY rowid",
        )?;
        let files = stmt.query_map([id], |r| {
            let outcome: String = r.get(1)?;
            Ok(FileResult {
                file: r.get(0)?,
                outcome: FileOutcome::parse(&outcome),
                rows_stored: r.get(2)?,
                rows_quarantined: r.get(3)?,
                bytes: r.get(4)?,
                error: r.get(5)?,
                duration_ms: r.get(6)?,
                rows_duplicate: r.get(7)?,
            })
        })?;
        job.files = files.collect::<rusqlite::Result<_>>()?;
        for f in &job.files {
            job.rows_stored += f.rows_stored.unwrap_or(0);
            job.rows_quarantined += f.rows_quarantined.unwrap_or(0);
            job.rows_duplicate += f.rows_duplicate.unwrap_or(0);
            job.bytes += f.bytes.unwrap_or(0);
            job.failed += i64::from(f.outcome == FileOutcome::Failed);
        }
        Ok(Some(job))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::listing::parse_line;

    /// Records `name` as listed and stored with `rows` rows in `path`.
    fn store(catalog: &Catalog, name: &str, rows: u64, path: &str) {
        let line = format!("1 00000000000000000000000000000000 http://x/{name}");
        let file = parse_line(&line).unwrap().unwrap();
        catalog.record_seen(std::slice::from_ref(&file)).unwrap();
        assert_eq!(catalog.claim(&file.name, 5).unwrap(), Claim::Claimed);
        catalog
            .mark_ingested(&StoredFile {
                name: &file.name,
                feed: "english",
                rows_stored: rows,
                rows_duplicate: 0,
                quarantined: &[],
                parquet_path: Some(path),
                parquet_bytes: 1,
                event_ids: &IdRuns::new(),
            })
            .unwrap();
    }

    fn paths(catalog: &Catalog) -> Vec<String> {
        catalog
            .lake_files("export", None, None)
            .unwrap()
            .into_iter()
            .map(|f| f.parquet_path)
            .collect()
    }

    #[test]
    fn a_compacted_day_is_listed_once_and_a_stale_swap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.sqlite")).unwrap();
        store(
            &catalog,
            "20150219000000.export.CSV.zip",
            3,
            "events/date=2015-02-19/a.parquet",
        );
        store(
            &catalog,
            "20150219001500.export.CSV.zip",
            4,
            "events/date=2015-02-19/b.parquet",
        );
        store(
            &catalog,
            "20150220000000.export.CSV.zip",
            5,
            "events/date=2015-02-20/c.parquet",
        );
        // Only complete days before `before`, and only days of more than one file.
        assert_eq!(
            catalog.compaction_groups(None, None, "2015-02-19").unwrap(),
            vec![]
        );
        let groups = catalog.compaction_groups(None, None, "2015-02-21").unwrap();
        assert_eq!(
            groups,
            vec![CompactionGroup {
                kind: "export".into(),
                feed: "english".into(),
                batch_date: "2015-02-19".into(),
                paths: vec![
                    "events/date=2015-02-19/a.parquet".into(),
                    "events/date=2015-02-19/b.parquet".into()
                ],
                rows: 7,
            }]
        );
        let generation = catalog.generation();
        assert!(catalog
            .swap_compacted(&groups[0], "events/date=2015-02-19/day.parquet", 9)
            .unwrap());
        assert!(catalog.generation() > generation);
        assert_eq!(
            paths(&catalog),
            vec![
                "events/date=2015-02-19/day.parquet",
                "events/date=2015-02-20/c.parquet"
            ]
        );
        // The same group again no longer matches what is stored: refused, nothing changes.
        assert!(!catalog
            .swap_compacted(&groups[0], "events/date=2015-02-19/day2.parquet", 9)
            .unwrap());
        assert_eq!(paths(&catalog)[0], "events/date=2015-02-19/day.parquet");

        // Retention: the files before the cutoff stop being listed, and stay ingested.
        let (files, gone) = catalog.expire_before("2015-02-20").unwrap();
        assert_eq!(
            (files, gone),
            (2, vec!["events/date=2015-02-19/day.parquet".to_owned()])
        );
        assert_eq!(paths(&catalog), vec!["events/date=2015-02-20/c.parquet"]);
        assert_eq!(
            catalog.claim("20150219000000.export.CSV.zip", 5).unwrap(),
            Claim::AlreadyIngested
        );
        assert_eq!(catalog.expire_before("2015-02-20").unwrap(), (0, vec![]));
    }

    #[test]
    fn a_failed_file_is_retried_only_after_its_backoff_and_until_max_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.sqlite")).unwrap();
        let line = "7 0123456789abcdef0123456789abcdef http://x/20150219000000.export.CSV.zip";
        let file = parse_line(line).unwrap().unwrap();
        catalog.record_seen(std::slice::from_ref(&file)).unwrap();
        assert_eq!(catalog.claim(&file.name, 3).unwrap(), Claim::Claimed);
        catalog.mark_failed(&file.name, "md5 mismatch").unwrap();
        // One attempt: the next waits 2^1 minutes.
        assert!(catalog.retryable(&["export"], 3).unwrap().is_empty());
        let age = |minutes: i64| {
            catalog
                .conn()
                .execute(
                    "UPDATE files SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1)",
                    [format!("-{minutes} minutes")],
                )
                .unwrap();
        };
        age(1);
        assert!(catalog.retryable(&["export"], 3).unwrap().is_empty());
        age(3);
        assert_eq!(catalog.retryable(&["export"], 3).unwrap(), vec![line]);
        // A huge attempt count neither overflows the shift nor waits more than a day.
        catalog
            .conn()
            .execute("UPDATE files SET attempts = 70", [])
            .unwrap();
        age(1441);
        assert_eq!(catalog.retryable(&["export"], 100).unwrap(), vec![line]);
        // At max_attempts the file stays failed, with its reason.
        assert!(catalog.retryable(&["export"], 70).unwrap().is_empty());
        assert_eq!(
            catalog.claim(&file.name, 70).unwrap(),
            Claim::GaveUp {
                attempts: 70,
                error: "md5 mismatch".into()
            }
        );
    }
}
