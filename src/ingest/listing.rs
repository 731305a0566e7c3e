//! GDELT listings (`lastupdate.txt`, `masterfilelist.txt`): `<size> <md5> <url>` per line.
//!
//! Listed URLs carry GDELT's canonical host; only the file name is kept for fetching, so a
//! mirror works. Lines that do not parse are counted, not fatal: real listings have oddities.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use chrono::NaiveDateTime;

/// The kind of a GDELT 2.0 file, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// `*.export.CSV.zip`: events.
    Export,
    /// `*.mentions.CSV.zip`.
    Mentions,
    /// `*.gkg.csv.zip`.
    Gkg,
}

impl FileKind {
    /// The name used in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Mentions => "mentions",
            Self::Gkg => "gkg",
        }
    }
}

/// One file named by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// File name, e.g. `20150218230000.export.CSV.zip`.
    pub name: String,
    pub kind: FileKind,
    /// Batch time (UTC), from the name.
    pub timestamp: NaiveDateTime,
    /// The URL as listed (its host may not be the one fetched from).
    pub url: String,
    pub size: u64,
    /// Lower-case hex md5 of the zip.
    pub md5: String,
}

impl ListedFile {
    /// `YYYYMMDDHHMMSS`.
    pub fn batch_ts(&self) -> String {
        self.timestamp.format("%Y%m%d%H%M%S").to_string()
    }

    /// `YYYY-MM-DD`, the partition date.
    pub fn batch_date(&self) -> String {
        self.timestamp.format("%Y-%m-%d").to_string()
    }
}

/// Why a listing line was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingLineError {
    #[error("expected '<size> <md5> <url>', found {0} fields")]
    Fields(usize),
    #[error("size {0:?} is not a whole number")]
    Size(String),
    #[error("md5 {0:?} is not 32 hex digits")]
    Md5(String),
    #[error("file name {0:?} is not a GDELT 2.0 YYYYMMDDHHMMSS.<kind> file")]
    Name(String),
}

/// Parses one listing line. `Ok(None)` for a file of a kind gdelt-lake does not know (for
/// example a translation file listed in the same place) and for blank lines.
///
/// # Errors
/// The line does not have the listing's shape.
pub fn parse_line(line: &str) -> Result<Option<ListedFile>, ListingLineError> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [size, md5, url] = fields[..] else {
        return Err(ListingLineError::Fields(fields.len()));
    };
    let size: u64 = size
        .parse()
        .map_err(|_| ListingLineError::Size(size.into()))?;
    if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ListingLineError::Md5(md5.into()));
    }
    let name = url.rsplit('/').next().unwrap_or(url);
    let mut parts = name.split('.');
    let stamp = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let timestamp = (stamp.len() == 14)
        .then(|| NaiveDateTime::parse_from_str(stamp, "%Y%m%d%H%M%S").ok())
        .flatten()
        .ok_or_else(|| ListingLineError::Name(name.into()))?;
    let kind = match rest.as_slice() {
        ["export", "CSV", "zip"] => FileKind::Export,
        ["mentions", "CSV", "zip"] => FileKind::Mentions,
        ["gkg", "csv", "zip"] => FileKind::Gkg,
        [.., "zip"] => return Ok(None),
        _ => return Err(ListingLineError::Name(name.into())),
    };
    Ok(Some(ListedFile {
        name: name.to_owned(),
        kind,
        timestamp,
        url: url.to_owned(),
        size,
        md5: md5.to_ascii_lowercase(),
    }))
}

/// Keeps the files of one kind from the `n` newest batches seen, whatever order lines come in.
/// Memory stays at `n` entries however long the listing is.
pub struct LatestBatches {
    kind: FileKind,
    n: usize,
    heap: BinaryHeap<Reverse<(NaiveDateTime, String)>>,
    files: BTreeMap<String, ListedFile>,
    bad_lines: u64,
    first_error: Option<String>,
}

impl LatestBatches {
    /// Selects the `n` newest batches of `kind`.
    pub fn new(kind: FileKind, n: usize) -> Self {
        Self {
            kind,
            n,
            heap: BinaryHeap::new(),
            files: BTreeMap::new(),
            bad_lines: 0,
            first_error: None,
        }
    }

    /// Feeds one listing line.
    pub fn push_line(&mut self, line: &str) {
        match parse_line(line) {
            Ok(Some(file)) if file.kind == self.kind => self.push(file),
            Ok(_) => {}
            Err(e) => {
                self.bad_lines += 1;
                self.first_error
                    .get_or_insert_with(|| format!("{e}: {line:?}"));
            }
        }
    }

    fn push(&mut self, file: ListedFile) {
        if self.files.contains_key(&file.name) {
            // A listing that names a file twice: the later line wins.
            self.files.insert(file.name.clone(), file);
            return;
        }
        let key = (file.timestamp, file.name.clone());
        if self.heap.len() < self.n {
            self.heap.push(Reverse(key));
        } else if self.heap.peek().is_some_and(|Reverse(min)| key > *min) {
            let Reverse((_, evicted)) = self.heap.pop().expect("heap is full");
            self.files.remove(&evicted);
            self.heap.push(Reverse(key));
        } else {
            return;
        }
        self.files.insert(file.name.clone(), file);
    }

    /// Lines that did not parse, and the first of them with its reason.
    pub fn bad_lines(&self) -> (u64, Option<&str>) {
        (self.bad_lines, self.first_error.as_deref())
    }

    /// The selected files, oldest batch first.
    pub fn into_files(self) -> Vec<ListedFile> {
        let mut files: Vec<ListedFile> = self.files.into_values().collect();
        files.sort_by(|a, b| (a.timestamp, &a.name).cmp(&(b.timestamp, &b.name)));
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_listing_lines_and_keeps_the_name() {
        let f = parse_line("150383 297a16b493de7cf6ca809a7cc31d0b93 http://data.gdeltproject.org/gdeltv2/20150218230000.export.CSV.zip")
            .unwrap()
            .unwrap();
        assert_eq!(f.name, "20150218230000.export.CSV.zip");
        assert_eq!(f.kind, FileKind::Export);
        assert_eq!(f.size, 150_383);
        assert_eq!(f.batch_ts(), "20150218230000");
        assert_eq!(f.batch_date(), "2015-02-18");
        let g = parse_line("194 a3b6d2b3e5f2f8b1c0d9e8f7a6b5c4d3 http://data.gdeltproject.org/gdeltv2/20150219094500.gkg.csv.zip")
            .unwrap()
            .unwrap();
        assert_eq!(g.kind, FileKind::Gkg);
        assert_eq!(
            parse_line("1 a3b6d2b3e5f2f8b1c0d9e8f7a6b5c4d3 http://x/20150219094500.translation.export.CSV.zip").unwrap(),
            None
        );
    }

    #[test]
    fn bad_lines_say_why() {
        assert_eq!(
            parse_line("12 abc").unwrap_err(),
            ListingLineError::Fields(2)
        );
        assert_eq!(
            parse_line("x 297a16b493de7cf6ca809a7cc31d0b93 http://h/20150218230000.export.CSV.zip")
                .unwrap_err(),
            ListingLineError::Size("x".into())
        );
        assert_eq!(
            parse_line("1 nothex http://h/20150218230000.export.CSV.zip").unwrap_err(),
            ListingLineError::Md5("nothex".into())
        );
        assert_eq!(
            parse_line("1 297a16b493de7cf6ca809a7cc31d0b93 http://h/index.html").unwrap_err(),
            ListingLineError::Name("index.html".into())
        );
    }

    #[test]
    fn selects_the_newest_batches_of_one_kind_from_an_unordered_real_listing() {
        let Some(text) =
            crate::test_support::shared_file("excerpts/masterfilelist.head-20150218.txt")
        else {
            return;
        };
        let mut latest = LatestBatches::new(FileKind::Export, 3);
        for line in text.lines() {
            latest.push_line(line);
        }
        let names: Vec<String> = latest.into_files().into_iter().map(|f| f.name).collect();
        let mut all: Vec<&str> = text
            .lines()
            .filter_map(|l| l.rsplit('/').next())
            .filter(|n| n.ends_with(".export.CSV.zip"))
            .collect();
        all.sort_unstable();
        let expected: Vec<String> = all[all.len() - 3..].iter().map(|s| s.to_string()).collect();
        assert_eq!(names, expected);
    }
}
