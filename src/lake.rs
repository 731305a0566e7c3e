//! The Parquet lake on local disk: where each batch's file lives and how it appears.
//!
//! Layout: `<data_dir>/lake/<table>/date=YYYY-MM-DD/<YYYYMMDDHHMMSS>.parquet`, Hive-style by the
//! batch's UTC date. A file is written under `<data_dir>/tmp/`, fsynced, renamed into place and
//! its directory fsynced, so a reader or a crash never sees half a file. Which files exist for
//! queries is the catalog's business, not a directory listing.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDateTime;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

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
}

impl Lake {
    /// Opens (creating) the lake under `data_dir` and removes temporary files that a crashed
    /// run left more than an hour ago (younger ones may belong to another live process).
    ///
    /// # Errors
    /// The directories cannot be created or read.
    pub fn open(data_dir: &Path) -> Result<Self, LakeError> {
        let lake = Self {
            root: data_dir.join("lake"),
            tmp: data_dir.join("tmp"),
        };
        std::fs::create_dir_all(&lake.root).map_err(io_err(&lake.root))?;
        std::fs::create_dir_all(&lake.tmp).map_err(io_err(&lake.tmp))?;
        let stale = std::time::Duration::from_secs(3600);
        for entry in std::fs::read_dir(&lake.tmp)
            .map_err(io_err(&lake.tmp))?
            .flatten()
        {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > stale));
            if old {
                // Best effort: a file we cannot remove is harmless and retried next start.
                let _ = std::fs::remove_file(entry.path());
            }
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
        let writer = ArrowWriter::try_new(file, schema, Some(props))?;
        Ok(ParquetSink {
            temp,
            writer,
            target: self.absolute(relative),
        })
    }
}

/// A Parquet file being written; it appears in the lake only on `commit`, and dropping it
/// leaves nothing behind.
pub struct ParquetSink {
    temp: tempfile::NamedTempFile,
    writer: ArrowWriter<File>,
    target: PathBuf,
}

impl ParquetSink {
    /// Appends a batch of rows.
    ///
    /// # Errors
    /// Encoding or disk errors (for example a full disk).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), LakeError> {
        self.writer.write(batch)?;
        Ok(())
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
