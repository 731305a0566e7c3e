//! GDELT listings (`lastupdate.txt`, `masterfilelist.txt`): `<size> <md5> <url>` per line.
//!
//! Listed URLs carry GDELT's canonical host; only the file name is kept for fetching, so a
//! mirror works. Lines that do not parse are counted, not fatal: real listings have oddities.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use chrono::{NaiveDate, NaiveDateTime};

use super::parse::{RowFormat, TableLayout, EVENTS, GKG, MENTIONS};

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
    /// Every kind, in order.
    pub const ALL: [FileKind; 3] = [Self::Export, Self::Mentions, Self::Gkg];

    /// The name used in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Mentions => "mentions",
            Self::Gkg => "gkg",
        }
    }

    /// The lake table this kind of file feeds.
    pub fn layout(self) -> &'static TableLayout {
        match self {
            Self::Export => &EVENTS,
            Self::Mentions => &MENTIONS,
            Self::Gkg => &GKG,
        }
    }

    /// The kind feeding a table name (`events`, `mentions`, `gkg`).
    pub fn for_table(table: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.layout().name == table)
    }
}

/// A GDELT feed: GDELT 2.0's English one, its translingual one (machine-translated sources),
/// which has listings and file names of its own, or GDELT 1.0's events (daily files since
/// 2013-04-01, monthly and yearly history files back to 1979). The same event id in two feeds
/// is two events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feed {
    English,
    Translingual,
    V1,
}

impl Feed {
    /// Every feed, in order.
    pub const ALL: [Feed; 3] = [Self::English, Self::Translingual, Self::V1];

    /// Whether the feed publishes files of `kind`: GDELT 1.0 has events only.
    pub fn has(self, kind: FileKind) -> bool {
        self != Self::V1 || kind == FileKind::Export
    }

    /// The name used in configuration, the catalog and the `feed` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::English => "english",
            Self::Translingual => "translingual",
            Self::V1 => "v1",
        }
    }

    /// The feed of a name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The listing of every file of this feed. GDELT 1.0 has an index in two files instead:
    /// `md5sums` (`<md5>  <name>`) and `filesizes` (`<bytes> <name>`), read together.
    pub fn master_listing(self) -> &'static str {
        match self {
            Self::English => "masterfilelist.txt",
            Self::Translingual => "masterfilelist-translation.txt",
            Self::V1 => V1_MD5SUMS,
        }
    }

    /// The listing of this feed's newest batch, where it has one.
    pub fn last_update(self) -> Option<&'static str> {
        match self {
            Self::English => Some("lastupdate.txt"),
            Self::Translingual => Some("lastupdate-translation.txt"),
            Self::V1 => None,
        }
    }

    /// What this feed adds to stored file names after the timestamp.
    pub fn name_infix(self) -> &'static str {
        match self {
            Self::English => "",
            Self::Translingual => ".translation",
            Self::V1 => ".v1",
        }
    }

    /// The first day the feed has files for.
    pub fn first_day(self) -> NaiveDate {
        match self {
            Self::English | Self::Translingual => NaiveDate::from_ymd_opt(2015, 2, 18),
            Self::V1 => NaiveDate::from_ymd_opt(1979, 1, 1),
        }
        .expect("a valid date")
    }

    /// `GDELT 2.0` or `GDELT 1.0`.
    pub fn generation(self) -> &'static str {
        match self {
            Self::English | Self::Translingual => "GDELT 2.0",
            Self::V1 => "GDELT 1.0",
        }
    }

    /// The folder of GDELT's server holding this feed, with GDELT's canonical host.
    pub fn canonical_folder(self) -> &'static str {
        match self {
            Self::English | Self::Translingual => "http://data.gdeltproject.org/gdeltv2/",
            Self::V1 => "http://data.gdeltproject.org/events/",
        }
    }
}

/// GDELT 1.0's index of md5s, one `<md5>  <name>` line per file.
pub const V1_MD5SUMS: &str = "md5sums";
/// GDELT 1.0's index of sizes, one `<bytes> <name>` line per file.
pub const V1_FILESIZES: &str = "filesizes";

/// How much time one file covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Span {
    /// A GDELT 2.0 batch: 15 minutes.
    Batch,
    /// A GDELT 1.0 daily file (`YYYYMMDD.export.CSV.zip`).
    Day,
    /// A GDELT 1.0 monthly history file (`YYYYMM.zip`, 2006-01 to 2013-03).
    Month,
    /// A GDELT 1.0 yearly history file (`YYYY.zip`, 1979 to 2005).
    Year,
}

/// Parses names into distinct values in a fixed order; the error says which name is wrong and
/// what is accepted, or that the list is empty.
fn parse_names<T: Copy + Ord>(
    names: &[&str],
    what: &str,
    accepted: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, String> {
    let mut values = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let value =
            parse(name).ok_or_else(|| format!("{name:?} is not a {what}; accepted: {accepted}"))?;
        if !values.contains(&value) {
            values.push(value);
        }
    }
    if values.is_empty() {
        return Err(format!("is empty; accepted: one or more of {accepted}"));
    }
    values.sort();
    Ok(values)
}

/// The kinds of file feeding table names (`events`, `mentions`, `gkg`).
///
/// # Errors
/// An unknown name or an empty list, as a sentence.
pub fn parse_tables(names: &[&str]) -> Result<Vec<FileKind>, String> {
    parse_names(names, "table", "events, mentions, gkg", FileKind::for_table)
}

/// Feeds by name (`english`, `translingual`).
///
/// # Errors
/// An unknown name or an empty list, as a sentence.
pub fn parse_feeds(names: &[&str]) -> Result<Vec<Feed>, String> {
    parse_names(names, "feed", "english, translingual, v1", Feed::parse)
}

/// One file named by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// File name, e.g. `20150218230000.export.CSV.zip`.
    pub name: String,
    pub kind: FileKind,
    pub feed: Feed,
    /// Batch time (UTC), from the name; for GDELT 1.0 files the start of the period covered.
    pub timestamp: NaiveDateTime,
    /// The period the file covers.
    pub span: Span,
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

    /// The last day the file covers: its batch date, or the end of its month or year.
    pub fn last_day(&self) -> NaiveDate {
        let first = self.timestamp.date();
        let next = match self.span {
            Span::Batch | Span::Day => return first,
            Span::Month => first.checked_add_months(chrono::Months::new(1)),
            Span::Year => first.checked_add_months(chrono::Months::new(12)),
        };
        next.and_then(|d| d.pred_opt()).unwrap_or(first)
    }

    /// The name of the one member the zip must hold: the zip's name without `.zip`, or for
    /// GDELT 1.0 history files `YYYYMM.csv` / `YYYY.csv`.
    pub fn member_name(&self) -> String {
        let stem = self.name.strip_suffix(".zip").unwrap_or(&self.name);
        match self.span {
            Span::Month | Span::Year => format!("{stem}.csv"),
            Span::Batch | Span::Day => stem.to_owned(),
        }
    }

    /// How the file's fields map onto its table.
    pub fn row_format(&self) -> RowFormat {
        match self.span {
            Span::Batch => RowFormat::Native,
            Span::Day => RowFormat::EventsV1Daily,
            Span::Month | Span::Year => RowFormat::EventsV1History,
        }
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
    #[error("file name {0:?} is not a GDELT 2.0 YYYYMMDDHHMMSS.<kind> or GDELT 1.0 events file")]
    Name(String),
    #[error("{0:?} is in md5sums but not in filesizes")]
    NoSize(String),
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
    let Some((timestamp, feed, kind, span)) = classify(name)? else {
        return Ok(None);
    };
    Ok(Some(ListedFile {
        name: name.to_owned(),
        kind,
        feed,
        timestamp,
        span,
        url: url.to_owned(),
        size,
        md5: md5.to_ascii_lowercase(),
    }))
}

/// What a file name says: batch time, feed, kind and span. `Ok(None)` for a zip of a kind
/// gdelt-lake does not take (GDELT 1.0's reduced master file, for example).
fn classify(name: &str) -> Result<Option<(NaiveDateTime, Feed, FileKind, Span)>, ListingLineError> {
    let bad = || ListingLineError::Name(name.into());
    let mut parts = name.split('.');
    let stamp = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let digits = !stamp.is_empty() && stamp.bytes().all(|b| b.is_ascii_digit());
    let date = |text: &str| NaiveDate::parse_from_str(text, "%Y%m%d").ok();
    let v1 = |day: Option<NaiveDate>, span| {
        let day = day.ok_or_else(bad)?;
        let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        Ok(Some((midnight, Feed::V1, FileKind::Export, span)))
    };
    match (digits, stamp.len(), &rest[..]) {
        (true, 14, _) => {}
        (true, 8, ["export", "CSV", "zip"]) => return v1(date(stamp), Span::Day),
        (true, 6, ["zip"]) => return v1(date(&format!("{stamp}01")), Span::Month),
        (true, 4, ["zip"]) => return v1(date(&format!("{stamp}0101")), Span::Year),
        (false, _, [_, ..]) if name.ends_with(".zip") => return Ok(None),
        _ => return Err(bad()),
    }
    let timestamp = NaiveDateTime::parse_from_str(stamp, "%Y%m%d%H%M%S").map_err(|_| bad())?;
    let (feed, rest) = match rest.split_first() {
        Some((&"translation", tail)) => (Feed::Translingual, tail),
        _ => (Feed::English, &rest[..]),
    };
    let kind = match rest {
        ["export", "CSV", "zip"] => FileKind::Export,
        ["mentions", "CSV", "zip"] => FileKind::Mentions,
        ["gkg", "csv", "zip"] => FileKind::Gkg,
        [.., "zip"] => return Ok(None),
        _ => return Err(bad()),
    };
    Ok(Some((timestamp, feed, kind, Span::Batch)))
}

/// Decides which listed files a run keeps.
pub trait Selector {
    /// Offers one listed file of a wanted kind.
    fn offer(&mut self, file: ListedFile);
    /// The kept files, oldest batch first, by kind within a batch.
    fn into_files(self) -> Vec<ListedFile>;
}

/// What a listing read selected, with what else it learned.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub files: Vec<ListedFile>,
    /// Lines that did not parse, and the first of them with its reason.
    pub bad_lines: u64,
    pub first_bad_line: Option<String>,
    /// The newest batch the listing names, of any kind.
    pub newest_listed: Option<NaiveDateTime>,
}

/// Reads a listing line by line into a selector, counting lines it cannot parse.
pub struct ListingReader<S> {
    kinds: Vec<FileKind>,
    selector: S,
    selection: Selection,
}

impl<S: Selector> ListingReader<S> {
    /// Offers `selector` the files of `kinds`.
    pub fn new(kinds: &[FileKind], selector: S) -> Self {
        Self {
            kinds: kinds.to_vec(),
            selector,
            selection: Selection::default(),
        }
    }

    /// Feeds one listing line.
    pub fn push_line(&mut self, line: &str) {
        match parse_line(line) {
            Ok(Some(file)) => {
                let newest = &mut self.selection.newest_listed;
                if newest.is_none_or(|n| file.timestamp > n) {
                    *newest = Some(file.timestamp);
                }
                if self.kinds.contains(&file.kind) {
                    self.selector.offer(file);
                }
            }
            Ok(None) => {}
            Err(e) => self.push_bad(line, &e),
        }
    }

    /// Counts a line found bad before parsing.
    pub fn push_bad(&mut self, line: &str, error: &ListingLineError) {
        self.selection.bad_lines += 1;
        self.selection
            .first_bad_line
            .get_or_insert_with(|| format!("{error}: {line:?}"));
    }

    /// The selection.
    pub fn finish(self) -> Selection {
        Selection {
            files: self.selector.into_files(),
            ..self.selection
        }
    }
}

fn sorted(mut files: Vec<ListedFile>) -> Vec<ListedFile> {
    files.sort_by_key(|f| (f.timestamp, f.kind, f.feed));
    files
}

/// Keeps the files of the `n` newest batches (timestamps) offered, whatever order lines come
/// in. Memory stays at `n` batches however long the listing is.
pub struct LatestBatches {
    n: usize,
    heap: BinaryHeap<Reverse<NaiveDateTime>>,
    batches: BTreeMap<NaiveDateTime, BTreeMap<String, ListedFile>>,
}

impl LatestBatches {
    /// Keeps the `n` newest batches.
    pub fn new(n: usize) -> Self {
        Self {
            n,
            heap: BinaryHeap::new(),
            batches: BTreeMap::new(),
        }
    }
}

impl Selector for LatestBatches {
    fn offer(&mut self, file: ListedFile) {
        let ts = file.timestamp;
        if let Some(batch) = self.batches.get_mut(&ts) {
            // A listing that names a file twice: the later line wins.
            batch.insert(file.name.clone(), file);
            return;
        }
        if self.heap.len() < self.n {
            self.heap.push(Reverse(ts));
        } else if self.heap.peek().is_some_and(|Reverse(oldest)| ts > *oldest) {
            let Reverse(evicted) = self.heap.pop().expect("heap is full");
            self.batches.remove(&evicted);
            self.heap.push(Reverse(ts));
        } else {
            return;
        }
        self.batches
            .entry(ts)
            .or_default()
            .insert(file.name.clone(), file);
    }

    fn into_files(self) -> Vec<ListedFile> {
        sorted(
            self.batches
                .into_values()
                .flat_map(BTreeMap::into_values)
                .collect(),
        )
    }
}

/// Keeps every file whose days overlap an inclusive range (for a GDELT 2.0 batch: whose batch
/// date lies in it).
pub struct BatchDateRange {
    from: NaiveDate,
    to: NaiveDate,
    files: BTreeMap<String, ListedFile>,
}

impl BatchDateRange {
    /// Files with batch dates from `from` to `to`, both included.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Self {
        Self {
            from,
            to,
            files: BTreeMap::new(),
        }
    }
}

impl Selector for BatchDateRange {
    fn offer(&mut self, file: ListedFile) {
        if file.timestamp.date() <= self.to && file.last_day() >= self.from {
            self.files.insert(file.name.clone(), file);
        }
    }

    fn into_files(self) -> Vec<ListedFile> {
        sorted(self.files.into_values().collect())
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
        let t = parse_line(
            "1 a3b6d2b3e5f2f8b1c0d9e8f7a6b5c4d3 http://x/20150219094500.translation.export.CSV.zip",
        )
        .unwrap()
        .unwrap();
        assert_eq!((t.kind, t.feed), (FileKind::Export, Feed::Translingual));
        assert_eq!(t.name, "20150219094500.translation.export.CSV.zip");
        assert_eq!(g.feed, Feed::English);
        assert_eq!(
            parse_line("1 a3b6d2b3e5f2f8b1c0d9e8f7a6b5c4d3 http://x/20150219094500.other.CSV.zip")
                .unwrap(),
            None
        );
    }

    #[test]
    fn a_date_range_keeps_every_file_of_those_days_and_counts_bad_lines() {
        let Some(text) =
            crate::test_support::shared_file("excerpts/masterfilelist.head-20150218.txt")
        else {
            return;
        };
        let day = NaiveDate::from_ymd_opt(2015, 2, 19).unwrap();
        let mut reader = ListingReader::new(&[FileKind::Export], BatchDateRange::new(day, day));
        for line in text.lines().chain(["garbage line"]) {
            reader.push_line(line);
        }
        let selection = reader.finish();
        let expected = text
            .lines()
            .filter(|l| l.contains("/20150219") && l.contains(".export."))
            .count();
        assert_eq!(selection.files.len(), expected);
        assert!(expected > 80, "{expected}");
        assert_eq!(selection.bad_lines, 1);
        assert_eq!(
            selection.first_bad_line.as_deref(),
            Some("expected '<size> <md5> <url>', found 2 fields: \"garbage line\"")
        );
        assert!(selection
            .files
            .windows(2)
            .all(|w| w[0].timestamp < w[1].timestamp));
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
        let mut latest = ListingReader::new(&[FileKind::Export], LatestBatches::new(3));
        for line in text.lines() {
            latest.push_line(line);
        }
        let selection = latest.finish();
        assert_eq!((selection.bad_lines, selection.first_bad_line), (0, None));
        assert_eq!(
            selection.newest_listed.unwrap().to_string(),
            "2015-02-22 12:15:00"
        );
        let names: Vec<String> = selection.files.into_iter().map(|f| f.name).collect();
        let mut all: Vec<&str> = text
            .lines()
            .filter_map(|l| l.rsplit('/').next())
            .filter(|n| n.ends_with(".export.CSV.zip"))
            .collect();
        all.sort_unstable();
        let expected: Vec<String> = all[all.len() - 3..].iter().map(|s| s.to_string()).collect();
        assert_eq!(names, expected);
        // Two kinds: the two newest batches with either, both files of each.
        let mut latest = ListingReader::new(
            &[FileKind::Export, FileKind::Mentions],
            LatestBatches::new(2),
        );
        for line in text.lines() {
            latest.push_line(line);
        }
        let names: Vec<String> = latest.finish().files.into_iter().map(|f| f.name).collect();
        // The newest batch of the excerpt was cut off after its export line.
        assert_eq!(
            names,
            vec![
                "20150222120000.export.CSV.zip",
                "20150222120000.mentions.CSV.zip",
                "20150222121500.export.CSV.zip",
            ]
        );
    }
}
