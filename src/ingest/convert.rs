//! A downloaded zip into a Parquet file: unzip as a stream, parse rows, write record batches.
//!
//! The zip is read with async_zip's streaming reader; decompressed chunks cross a small bounded
//! channel to a blocking task that splits lines, parses them and writes Parquet, so memory stays
//! bounded by the chunk and record-batch sizes whatever the file size. The Parquet file is not
//! committed here: the caller commits it only once the whole zip has checked out (one member,
//! the expected name, a matching CRC).

use std::path::Path;

use async_zip::base::read::stream::ZipFileReader;
use futures_util::io::AsyncReadExt;
use tokio::io::BufReader;
use tokio::sync::mpsc;

use super::ids::IdRuns;
use super::parse::{Pushed, QuarantinedLine, RowFormat, RowParser, TableLayout};
use crate::lake::{Lake, LakeError, ParquetSink};

/// Rows per record batch handed to the Parquet writer.
const BATCH_ROWS: usize = 16 * 1024;
/// Raw bytes of the lines buffered in a record batch before it is handed over, whatever the
/// row count: GKG lines run to tens of kilobytes.
const BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Size of a decompressed chunk sent to the parser.
const CHUNK_BYTES: usize = 256 * 1024;

/// Why a zip could not be converted. The message is recorded as the file's failure reason.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("not a readable zip: {0}")]
    Zip(String),
    #[error("the zip has no member")]
    NoMember,
    #[error("the zip has more than one member")]
    SeveralMembers,
    #[error("zip member is named {found:?}, expected {expected:?}")]
    MemberName { expected: String, found: String },
    #[error(
        "zip member is corrupt: CRC-32 {actual:08x} does not match the recorded {expected:08x}"
    )]
    Crc { expected: u32, actual: u32 },
    #[error("reading the download: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("building record batches: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("the conversion task stopped unexpectedly: {0}")]
    Task(String),
}

impl From<async_zip::error::ZipError> for ConvertError {
    fn from(e: async_zip::error::ZipError) -> Self {
        Self::Zip(e.to_string())
    }
}

/// What a file's rows are: the table they go to, how its fields map onto it, and the feed
/// they come from.
#[derive(Clone, Copy)]
pub struct Rows {
    pub layout: &'static TableLayout,
    pub format: RowFormat,
    pub feed: &'static str,
}

/// A converted file waiting to be committed.
pub struct Converted {
    /// The Parquet file, absent when no row was stored (an empty batch).
    pub sink: Option<ParquetSink>,
    pub lines_read: u64,
    pub rows_stored: u64,
    /// Rows whose unique key came earlier in the file, counted and not stored.
    pub duplicates: u64,
    /// The unique keys of the stored rows (empty for tables without one).
    pub keys: IdRuns,
    pub quarantined: Vec<QuarantinedLine>,
}

/// Converts the zip at `zip_path`, whose single member must be `member_name`, into a Parquet
/// file that will appear at the lake-relative path `target` once committed.
///
/// # Errors
/// See `ConvertError`; no Parquet file is left behind on error.
pub async fn convert(
    zip_path: &Path,
    member_name: &str,
    rows: Rows,
    lake: &Lake,
    target: &str,
) -> Result<Converted, ConvertError> {
    let file = tokio::fs::File::open(zip_path).await?;
    let zip = ZipFileReader::with_tokio(BufReader::with_capacity(64 * 1024, file));
    /// The signatures of the central directory and its end: a zip whose first record is one
    /// of these has no member.
    const NO_MEMBER: [u32; 2] = [0x0201_4b50, 0x0605_4b50];
    let first = match zip.next_with_entry().await {
        Err(async_zip::error::ZipError::UnexpectedHeaderError(actual, _))
            if NO_MEMBER.contains(&actual) =>
        {
            return Err(ConvertError::NoMember)
        }
        other => other?,
    };
    let Some(mut reading) = first else {
        return Err(ConvertError::NoMember);
    };
    let entry = reading.reader().entry();
    let found = entry
        .filename()
        .as_str()
        .map_err(|e| ConvertError::Zip(e.to_string()))?
        .to_owned();
    if found != member_name {
        return Err(ConvertError::MemberName {
            expected: member_name.to_owned(),
            found,
        });
    }
    let expected_crc = entry.crc32();
    // A member written with a data descriptor has no CRC in its local header (it reads 0);
    // its CRC cannot be checked before the data, so only recorded CRCs are compared.
    let checks_crc = expected_crc != 0;

    let (tx, rx) = mpsc::channel::<Vec<u8>>(4);
    let lake = lake.clone();
    let target = target.to_owned();
    let parser_task = tokio::task::spawn_blocking(move || parse_stream(rx, rows, &lake, &target));

    let mut read_result: Result<(), ConvertError> = Ok(());
    loop {
        let mut chunk = vec![0u8; CHUNK_BYTES];
        match reading.reader_mut().read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => {
                chunk.truncate(n);
                if tx.send(chunk).await.is_err() {
                    break; // The parser failed; its error is reported below.
                }
            }
            Err(e) => {
                read_result = Err(ConvertError::Zip(e.to_string()));
                break;
            }
        }
    }
    drop(tx);
    let parsed = parser_task
        .await
        .map_err(|e| ConvertError::Task(e.to_string()))?;
    read_result?;
    let converted = parsed?;
    if checks_crc {
        let actual = reading.reader_mut().compute_hash();
        if actual != expected_crc {
            return Err(ConvertError::Crc {
                expected: expected_crc,
                actual,
            });
        }
    }
    let rest = reading.done().await?;
    if rest.next_without_entry().await?.is_some() {
        return Err(ConvertError::SeveralMembers);
    }
    Ok(converted)
}

/// The blocking half: lines out of decompressed chunks, rows into Parquet.
fn parse_stream(
    mut rx: mpsc::Receiver<Vec<u8>>,
    rows: Rows,
    lake: &Lake,
    target: &str,
) -> Result<Converted, ConvertError> {
    let mut parser = RowParser::new(rows.layout, rows.format, rows.feed);
    let mut sink: Option<ParquetSink> = None;
    let mut quarantined = Vec::new();
    let mut lines_read = 0u64;
    let mut rows_stored = 0u64;
    let mut duplicates = 0u64;
    let mut buffered_bytes = 0usize;
    let mut carry: Vec<u8> = Vec::new();

    let mut take_line = |line: &[u8],
                         parser: &mut RowParser,
                         sink: &mut Option<ParquetSink>|
     -> Result<(), ConvertError> {
        lines_read += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match parser.push_line(lines_read, line) {
            Ok(Pushed::Row) => rows_stored += 1,
            Ok(Pushed::Duplicate) => duplicates += 1,
            Err(q) => quarantined.push(q),
        }
        buffered_bytes += line.len();
        if parser.buffered_rows() >= BATCH_ROWS || buffered_bytes >= BATCH_BYTES {
            buffered_bytes = 0;
            if parser.buffered_rows() > 0 {
                flush(parser, sink, lake, target)?;
            }
        }
        Ok(())
    };

    while let Some(chunk) = rx.blocking_recv() {
        let mut start = 0;
        while let Some(pos) = chunk[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            if carry.is_empty() {
                take_line(&chunk[start..end], &mut parser, &mut sink)?;
            } else {
                carry.extend_from_slice(&chunk[start..end]);
                let line = std::mem::take(&mut carry);
                take_line(&line, &mut parser, &mut sink)?;
            }
            start = end + 1;
        }
        carry.extend_from_slice(&chunk[start..]);
    }
    if !carry.is_empty() {
        let line = std::mem::take(&mut carry);
        take_line(&line, &mut parser, &mut sink)?;
    }
    if parser.buffered_rows() > 0 {
        flush(&mut parser, &mut sink, lake, target)?;
    }
    Ok(Converted {
        sink,
        lines_read,
        rows_stored,
        duplicates,
        keys: parser.take_keys(),
        quarantined,
    })
}

fn flush(
    parser: &mut RowParser,
    sink: &mut Option<ParquetSink>,
    lake: &Lake,
    target: &str,
) -> Result<(), ConvertError> {
    let batch = parser.finish_batch()?;
    if sink.is_none() {
        *sink = Some(lake.writer(target, parser.schema())?);
    }
    sink.as_mut().expect("created above").write(&batch)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse::tests::distinct_row;
    use crate::ingest::parse::{ColumnKind, EVENTS};
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Date32Type, Float64Type, Int64Type, TimestampMillisecondType};
    use async_zip::base::write::ZipFileWriter;
    use async_zip::{Compression, ZipEntryBuilder};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    const ENGLISH: Rows = Rows {
        layout: &EVENTS,
        format: RowFormat::Native,
        feed: "english",
    };

    async fn write_zip(path: &Path, member: &str, content: &[u8]) {
        let mut writer = ZipFileWriter::new(Vec::<u8>::new());
        writer
            .write_entry_whole(
                ZipEntryBuilder::new(member.to_owned().into(), Compression::Deflate),
                content,
            )
            .await
            .unwrap();
        std::fs::write(path, writer.close().await.unwrap()).unwrap();
    }

    #[tokio::test]
    async fn a_row_with_distinct_values_survives_the_round_trip_into_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let row = distinct_row();
        let mut other = row.clone();
        other[0] = "999".into();
        let bad = row[..60].join("\t");
        // No final newline: the last line still counts. The last line repeats an event id.
        let content = format!(
            "{}\n{bad}\n{}\n{}",
            other.join("\t"),
            row.join("\t"),
            row.join("\t")
        );
        let zip = dir.path().join("b.zip");
        write_zip(&zip, "20150218230000.export.CSV", content.as_bytes()).await;
        let target = "events/date=2015-02-18/20150218230000.parquet";
        let converted = convert(&zip, "20150218230000.export.CSV", ENGLISH, &lake, target)
            .await
            .unwrap();
        assert_eq!(
            (
                converted.lines_read,
                converted.rows_stored,
                converted.duplicates
            ),
            (4, 2, 1)
        );
        assert_eq!(converted.keys.runs(), vec![(999, 1000)]);
        assert_eq!(converted.quarantined.len(), 1);
        assert_eq!(converted.quarantined[0].line_no, 2);
        assert_eq!(converted.quarantined[0].raw, bad.as_bytes());
        assert!(
            !lake.absolute(target).exists(),
            "nothing appears before commit"
        );
        converted.sink.unwrap().commit().unwrap();

        let file = std::fs::File::open(lake.absolute(target)).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let compression = builder.metadata().row_group(0).column(0).compression();
        // Parquet records the codec, not its level.
        assert!(
            matches!(compression, parquet::basic::Compression::ZSTD(_)),
            "{compression}"
        );
        let batches: Vec<_> = builder.build().unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), EVENTS.schema());
        for (i, (name, kind)) in EVENTS.columns.iter().enumerate() {
            let col = batch.column(i);
            assert!(!col.is_null(1), "{name}");
            let text = &row[i];
            match kind {
                ColumnKind::Text => assert_eq!(col.as_string::<i32>().value(1), text, "{name}"),
                ColumnKind::Int => {
                    assert_eq!(
                        col.as_primitive::<Int64Type>().value(1),
                        text.parse::<i64>().unwrap(),
                        "{name}"
                    )
                }
                ColumnKind::Float => {
                    assert_eq!(
                        col.as_primitive::<Float64Type>().value(1),
                        text.parse::<f64>().unwrap(),
                        "{name}"
                    )
                }
                ColumnKind::Date8 => {
                    assert_eq!(col.as_primitive::<Date32Type>().value(1), 16483, "{name}")
                }
                ColumnKind::Flag => assert!(col.as_boolean().value(1), "{name}"),
                ColumnKind::Timestamp8 => unreachable!("not a stored column kind"),
                ColumnKind::Timestamp14 => {
                    assert_eq!(
                        col.as_primitive::<TimestampMillisecondType>().value(1),
                        1_424_300_400_000,
                        "{name}"
                    )
                }
            }
        }
    }

    #[tokio::test]
    async fn a_failed_conversion_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let zip = dir.path().join("b.zip");
        write_zip(&zip, "other.CSV", b"x\n").await;
        let err = convert(
            &zip,
            "20150218230000.export.CSV",
            ENGLISH,
            &lake,
            "events/x.parquet",
        )
        .await
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "zip member is named \"other.CSV\", expected \"20150218230000.export.CSV\""
        );
        assert_eq!(std::fs::read_dir(lake.tmp_dir()).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(lake.root()).unwrap().count(), 0);
    }
}
