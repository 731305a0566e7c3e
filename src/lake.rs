//! The Parquet lake on local disk: where each batch's file lives and how it appears.
//!
//! Layout: `<data_dir>/lake/<table>/date=YYYY-MM-DD/<YYYYMMDDHHMMSS>.parquet`, Hive-style by the
//! batch's UTC date. A file is written under `<data_dir>/tmp/`, fsynced, renamed into place and
//! its directory fsynced, so a reader or a crash never sees half a file. Which files exist for
//! queries is the catalog's business, not a directory listing.
//!
//! Files leave the lake (replaced by compaction, dropped by retention) only once no query that
//! may still read them runs: a query pins the current read epoch before it takes its file list
//! from the catalog; retiring files ends the epoch, and they are deleted when its last pin goes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDateTime;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

/// Encoded bytes a row group may buffer before it is written out.
const ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;

/// Errors writing to the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing Parquet: {0}")]
    Parquet(#[from] ParquetError),
    #[error("filtering rows: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LakeError + '_ {
    move |source| LakeError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Paths of the lake under one data directory.
#[derive(Debug, Clone)]
pub struct Lake {
    root: PathBuf,
    tmp: PathBuf,
    epoch: Arc<Mutex<Arc<Epoch>>>,
}

/// A read epoch: the files retired while it was current, deleted when its last pin goes.
/// Each epoch holds the one that followed it, so a query pinned early also holds back every
/// file retired after it started (its file list may name them too).
#[derive(Debug, Default)]
struct Epoch {
    doomed: Mutex<Vec<PathBuf>>,
    next: Mutex<Option<Arc<Epoch>>>,
}

impl Drop for Epoch {
    fn drop(&mut self) {
        let doomed = self.doomed.get_mut().unwrap_or_else(|p| p.into_inner());
        for path in doomed.drain(..) {
            // Best effort: a file that cannot be removed is no longer listed, so it is only
            // wasted space, never read.
            let _ = std::fs::remove_file(&path);
            if let Some(dir) = path.parent() {
                // Succeeds only when the partition is now empty.
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// Held by a query from before it reads the catalog's file list until it has finished
/// reading the files: none of them is deleted meanwhile.
#[derive(Debug)]
pub struct ReadPin {
    _epoch: Arc<Epoch>,
}

impl Lake {
    /// Opens (creating) the lake under `data_dir` and removes every temporary file a crashed
    /// run left behind. The caller holds the data directory's lock, so no other process is
    /// writing there.
    ///
    /// # Errors
    /// The directories cannot be created or read.
    pub fn open(data_dir: &Path) -> Result<Self, LakeError> {
        let lake = Self {
            root: data_dir.join("lake"),
            tmp: data_dir.join("tmp"),
            epoch: Arc::default(),
        };
        std::fs::create_dir_all(&lake.root).map_err(io_err(&lake.root))?;
        std::fs::create_dir_all(&lake.tmp).map_err(io_err(&lake.tmp))?;
        for entry in std::fs::read_dir(&lake.tmp)
            .map_err(io_err(&lake.tmp))?
            .flatten()
        {
            // Best effort: a file we cannot remove is harmless and retried next start.
            let _ = std::fs::remove_file(entry.path());
        }
        Ok(lake)
    }

    /// Moves a download out of the temporary area into `<data_dir>/quarantine/<name>`, where
    /// it stays for re-processing. Returns where it went.
    ///
    /// # Errors
    /// The directory cannot be created or the file moved.
    pub fn keep_aside(
        &self,
        file: tempfile::NamedTempFile,
        name: &str,
    ) -> Result<PathBuf, LakeError> {
        let dir = self.tmp.with_file_name("quarantine");
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let target = dir.join(name);
        file.persist(&target).map_err(|e| LakeError::Io {
            path: target.clone(),
            source: e.error,
        })?;
        Ok(target)
    }

    /// Pins the current read epoch: files retired from now on stay on disk until the pin is
    /// dropped.
    pub fn pin(&self) -> ReadPin {
        ReadPin {
            _epoch: self.epoch.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    /// Deletes these lake-relative files once no query pinned before now still runs. Call it
    /// after the catalog stopped listing them.
    pub fn retire(&self, relative: impl IntoIterator<Item = String>) {
        let old = {
            let mut current = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
            let old = std::mem::take(&mut *current);
            *old.next.lock().unwrap_or_else(|p| p.into_inner()) = Some(current.clone());
            old
        };
        old.doomed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(relative.into_iter().map(|r| self.absolute(&r)));
        // Deleted here when no query holds the old epoch, else when the last one ends.
        drop(old);
    }

    /// Directory for downloads and files being written.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// The lake's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path relative to the lake root of a batch's file, e.g.
    /// `events/date=2015-02-18/20150218230000.parquet`; `infix` tells feeds apart
    /// (`20150218230000.translation.parquet`).
    pub fn batch_path(table: &str, batch: NaiveDateTime, infix: &str) -> String {
        format!(
            "{table}/date={}/{}{infix}.parquet",
            batch.format("%Y-%m-%d"),
            batch.format("%Y%m%d%H%M%S")
        )
    }

    /// Absolute path of a lake-relative path.
    pub fn absolute(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Starts writing a Parquet file that will appear at `relative` when committed.
    ///
    /// # Errors
    /// The temporary file cannot be created.
    pub fn writer(&self, relative: &str, schema: SchemaRef) -> Result<ParquetSink, LakeError> {
        self.writer_to(self.absolute(relative), schema)
    }

    fn writer_to(&self, target: PathBuf, schema: SchemaRef) -> Result<ParquetSink, LakeError> {
        let temp = tempfile::Builder::new()
            .prefix("write-")
            .suffix(".parquet")
            .tempfile_in(&self.tmp)
            .map_err(io_err(&self.tmp))?;
        let file = temp.reopen().map_err(io_err(temp.path()))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_max_row_group_row_count(Some(128 * 1024))
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
        Ok(ParquetSink {
            temp,
            writer,
            schema,
            target,
        })
    }
}

/// A Parquet file being written; it appears in the lake only on `commit`, and dropping it
/// leaves nothing behind.
pub struct ParquetSink {
    temp: tempfile::NamedTempFile,
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    target: PathBuf,
}

impl ParquetSink {
    /// Appends a batch of rows.
    ///
    /// # Errors
    /// Encoding or disk errors (for example a full disk).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), LakeError> {
        self.writer.write(batch)?;
        // A row group is buffered whole until it is closed: close it by size too, so wide
        // rows (GKG) keep memory bounded.
        if self.writer.in_progress_size() >= ROW_GROUP_BYTES {
            self.writer.flush()?;
        }
        Ok(())
    }

    /// Rewrites the rows written so far into a new uncommitted file, keeping those `keep`
    /// selects, batch by batch, so memory stays at one record batch. `None` when no row is
    /// left. Returns how many rows were dropped.
    ///
    /// # Errors
    /// Encoding, decoding or disk errors; nothing is left behind.
    pub fn retain(
        self,
        lake: &Lake,
        keep: impl Fn(&RecordBatch) -> Result<BooleanArray, arrow::error::ArrowError>,
    ) -> Result<(Option<ParquetSink>, u64), LakeError> {
        let file = self.writer.into_inner()?;
        drop(file);
        let reader = File::open(self.temp.path()).map_err(io_err(self.temp.path()))?;
        let batches = ParquetRecordBatchReaderBuilder::try_new(reader)?.build()?;
        let mut out: Option<ParquetSink> = None;
        let mut dropped = 0u64;
        for batch in batches {
            let batch = batch?;
            let kept = filter_record_batch(&batch, &keep(&batch)?)?;
            dropped += (batch.num_rows() - kept.num_rows()) as u64;
            if kept.num_rows() == 0 {
                continue;
            }
            if out.is_none() {
                out = Some(lake.writer_to(self.target.clone(), self.schema.clone())?);
            }
            out.as_mut().expect("created above").write(&kept)?;
        }
        Ok((out, dropped))
    }

    /// Finishes the file, makes it durable and moves it into place, replacing any file already
    /// there. Returns the final size in bytes.
    ///
    /// # Errors
    /// Encoding or disk errors; the temporary file is removed and the target is untouched.
    pub fn commit(self) -> Result<u64, LakeError> {
        let file = self.writer.into_inner()?;
        file.sync_all().map_err(io_err(self.temp.path()))?;
        let size = file.metadata().map_err(io_err(self.temp.path()))?.len();
        drop(file);
        let dir = self.target.parent().expect("batch paths have a parent");
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        self.temp.persist(&self.target).map_err(|e| LakeError::Io {
            path: self.target.clone(),
            source: e.error,
        })?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retired_file_stays_while_a_query_pinned_before_runs() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let relative = "events/date=2015-02-18/20150218230000.parquet";
        let path = lake.absolute(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"x").unwrap();
        let keep = lake.absolute("events/date=2015-02-18/day-1.parquet");
        std::fs::write(&keep, b"y").unwrap();

        let before = lake.pin();
        lake.retire([relative.to_owned()]);
        // A query pinned after the retirement does not hold the file back.
        let after = lake.pin();
        assert!(path.exists(), "deleted under a running query");
        drop(before);
        assert!(!path.exists(), "kept after its last reader");
        assert!(keep.exists());
        drop(after);

        // With no reader, a retired file goes at once, and so does its emptied partition.
        lake.retire(["events/date=2015-02-18/day-1.parquet".to_owned()]);
        assert!(!keep.exists());
        assert!(!keep.parent().unwrap().exists());
    }

    #[test]
    fn a_query_pinned_before_two_retirements_holds_back_both() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let day1 = "events/date=2015-02-18/20150218230000.parquet";
        let day2 = "events/date=2015-02-19/20150219000000.parquet";
        for relative in [day1, day2] {
            let path = lake.absolute(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"x").unwrap();
        }

        // The query's file list names both days; compaction swaps them one after the other.
        let query = lake.pin();
        lake.retire([day1.to_owned()]);
        let later = lake.pin();
        lake.retire([day2.to_owned()]);
        assert!(lake.absolute(day1).exists());
        assert!(
            lake.absolute(day2).exists(),
            "deleted under a running query"
        );
        drop(query);
        assert!(!lake.absolute(day1).exists());
        // `later` pinned before the second retirement, so it still holds day 2.
        assert!(lake.absolute(day2).exists());
        drop(later);
        assert!(!lake.absolute(day2).exists());
    }

    #[test]
    fn opening_clears_what_a_crashed_run_left_in_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let leftover = lake.tmp_dir().join("download-123.zip");
        std::fs::write(&leftover, b"partial").unwrap();
        Lake::open(dir.path()).unwrap();
        assert!(!leftover.exists());
    }
}
