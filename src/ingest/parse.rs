//! Tab-separated GDELT rows into typed Arrow record batches.
//!
//! GDELT files have no header, no quoting (a `"` is a literal character) and one record per
//! line. Each table has one fixed schema; nothing is inferred from the data. A line that does
//! not fit the schema (wrong field count, invalid UTF-8, an unparseable number or date) is
//! returned as a quarantine record with its line number and never stops the rest of the file.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use chrono::{NaiveDate, NaiveDateTime};

use super::ids::IdRuns;

/// How a column's text is turned into a typed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Kept as text; codes keep their leading zeros.
    Text,
    /// 64-bit signed integer.
    Int,
    /// 64-bit float.
    Float,
    /// `YYYYMMDD` into a date.
    Date8,
    /// `0` / `1` into a boolean.
    Flag,
    /// `YYYYMMDDHHMMSS` into a timestamp (millisecond unit, as Parquet has no seconds). GDELT times are UTC; the
    /// column carries no zone so every reader sees the same wall-clock value.
    Timestamp14,
    /// `YYYYMMDD` into a timestamp at midnight: GDELT 1.0's DATEADDED, read into the 2.0
    /// timestamp column. Only in file formats, never a stored column's kind.
    Timestamp8,
}

impl ColumnKind {
    fn data_type(self) -> DataType {
        match self {
            Self::Text => DataType::Utf8,
            Self::Int => DataType::Int64,
            Self::Float => DataType::Float64,
            Self::Date8 => DataType::Date32,
            Self::Flag => DataType::Boolean,
            Self::Timestamp14 | Self::Timestamp8 => {
                DataType::Timestamp(TimeUnit::Millisecond, None)
            }
        }
    }
}

/// A fixed table layout: column names in file order, with their kinds.
pub struct TableLayout {
    pub name: &'static str,
    pub columns: &'static [(&'static str, ColumnKind)],
    /// The integer column whose value a row is stored once per feed under, if any.
    pub unique_key: Option<&'static str>,
}

impl TableLayout {
    /// The Arrow schema; every column is nullable (an empty field is null).
    /// The stored schema: the file's columns, then `feed` (the feed the row came from).
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|(name, kind)| Field::new(*name, kind.data_type(), true))
                .chain([Field::new(FEED_COLUMN, DataType::Utf8, false)])
                .collect::<Vec<_>>(),
        ))
    }
}

/// The column added to every table: which feed (`english`, `translingual`) a row came from.
pub const FEED_COLUMN: &str = "feed";

use ColumnKind::{Date8, Flag, Float, Int, Text, Timestamp14};

/// GDELT 2.0 events: 61 columns, in file order.
pub const EVENTS: TableLayout = TableLayout {
    name: "events",
    unique_key: Some("GlobalEventID"),
    columns: &[
        ("GlobalEventID", Int),
        ("Day", Date8),
        ("MonthYear", Int),
        ("Year", Int),
        ("FractionDate", Float),
        ("Actor1Code", Text),
        ("Actor1Name", Text),
        ("Actor1CountryCode", Text),
        ("Actor1KnownGroupCode", Text),
        ("Actor1EthnicCode", Text),
        ("Actor1Religion1Code", Text),
        ("Actor1Religion2Code", Text),
        ("Actor1Type1Code", Text),
        ("Actor1Type2Code", Text),
        ("Actor1Type3Code", Text),
        ("Actor2Code", Text),
        ("Actor2Name", Text),
        ("Actor2CountryCode", Text),
        ("Actor2KnownGroupCode", Text),
        ("Actor2EthnicCode", Text),
        ("Actor2Religion1Code", Text),
        ("Actor2Religion2Code", Text),
        ("Actor2Type1Code", Text),
        ("Actor2Type2Code", Text),
        ("Actor2Type3Code", Text),
        ("IsRootEvent", Flag),
        ("EventCode", Text),
        ("EventBaseCode", Text),
        ("EventRootCode", Text),
        ("QuadClass", Int),
        ("GoldsteinScale", Float),
        ("NumMentions", Int),
        ("NumSources", Int),
        ("NumArticles", Int),
        ("AvgTone", Float),
        ("Actor1Geo_Type", Int),
        ("Actor1Geo_FullName", Text),
        ("Actor1Geo_CountryCode", Text),
        ("Actor1Geo_ADM1Code", Text),
        ("Actor1Geo_ADM2Code", Text),
        ("Actor1Geo_Lat", Float),
        ("Actor1Geo_Long", Float),
        ("Actor1Geo_FeatureID", Text),
        ("Actor2Geo_Type", Int),
        ("Actor2Geo_FullName", Text),
        ("Actor2Geo_CountryCode", Text),
        ("Actor2Geo_ADM1Code", Text),
        ("Actor2Geo_ADM2Code", Text),
        ("Actor2Geo_Lat", Float),
        ("Actor2Geo_Long", Float),
        ("Actor2Geo_FeatureID", Text),
        ("ActionGeo_Type", Int),
        ("ActionGeo_FullName", Text),
        ("ActionGeo_CountryCode", Text),
        ("ActionGeo_ADM1Code", Text),
        ("ActionGeo_ADM2Code", Text),
        ("ActionGeo_Lat", Float),
        ("ActionGeo_Long", Float),
        ("ActionGeo_FeatureID", Text),
        ("DATEADDED", Timestamp14),
        ("SOURCEURL", Text),
    ],
};

/// GDELT 2.0 mentions: 16 columns, in file order.
pub const MENTIONS: TableLayout = TableLayout {
    name: "mentions",
    unique_key: None,
    columns: &[
        ("GlobalEventID", Int),
        ("EventTimeDate", Timestamp14),
        ("MentionTimeDate", Timestamp14),
        ("MentionType", Int),
        ("MentionSourceName", Text),
        ("MentionIdentifier", Text),
        ("SentenceID", Int),
        ("Actor1CharOffset", Int),
        ("Actor2CharOffset", Int),
        ("ActionCharOffset", Int),
        ("InRawText", Int),
        ("Confidence", Int),
        ("MentionDocLen", Int),
        ("MentionDocTone", Float),
        ("MentionDocTranslationInfo", Text),
        ("Extras", Text),
    ],
};

/// GDELT 2.1 Global Knowledge Graph: 27 columns, in file order. The nested fields (counts,
/// themes, locations, tone...) keep GDELT's own delimiters as text.
pub const GKG: TableLayout = TableLayout {
    name: "gkg",
    unique_key: None,
    columns: &[
        ("GKGRECORDID", Text),
        ("DATE", Timestamp14),
        ("SourceCollectionIdentifier", Int),
        ("SourceCommonName", Text),
        ("DocumentIdentifier", Text),
        ("Counts", Text),
        ("V2Counts", Text),
        ("Themes", Text),
        ("V2Themes", Text),
        ("Locations", Text),
        ("V2Locations", Text),
        ("Persons", Text),
        ("V2Persons", Text),
        ("Organizations", Text),
        ("V2Organizations", Text),
        ("V2Tone", Text),
        ("Dates", Text),
        ("GCAM", Text),
        ("SharingImage", Text),
        ("RelatedImages", Text),
        ("SocialImageEmbeds", Text),
        ("SocialVideoEmbeds", Text),
        ("Quotations", Text),
        ("AllNames", Text),
        ("Amounts", Text),
        ("TranslationInfo", Text),
        ("Extras", Text),
    ],
};

/// How a file's fields map onto its table's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// The table's own columns, in order (every GDELT 2.0 file).
    Native,
    /// GDELT 1.0 daily events: 58 fields, the 2.0 columns without the three `*Geo_ADM2Code`,
    /// DATEADDED as `YYYYMMDD`.
    EventsV1Daily,
    /// GDELT 1.0 history events: 57 fields, the daily ones without SOURCEURL.
    EventsV1History,
}

impl RowFormat {
    /// For each field of a line, in order: the index of its column in `layout`, and how it is
    /// read. Columns no field maps onto stay null.
    pub fn fields(self, layout: &TableLayout) -> Vec<(usize, ColumnKind)> {
        let native = layout
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| (i, *kind));
        match self {
            Self::Native => native.collect(),
            Self::EventsV1Daily | Self::EventsV1History => native
                .filter(|(i, _)| !layout.columns[*i].0.ends_with("Geo_ADM2Code"))
                .filter(|(i, _)| self == Self::EventsV1Daily || layout.columns[*i].0 != "SOURCEURL")
                .map(|(i, kind)| match layout.columns[i].0 {
                    "DATEADDED" => (i, ColumnKind::Timestamp8),
                    _ => (i, kind),
                })
                .collect(),
        }
    }
}

/// Every table, by name.
pub const TABLES: [&TableLayout; 3] = [&EVENTS, &MENTIONS, &GKG];

/// A line set aside instead of stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedLine {
    /// 1-based line number in the unzipped file.
    pub line_no: u64,
    pub reason: String,
    /// The line's bytes exactly as read (even invalid UTF-8), without its line ending.
    pub raw: Vec<u8>,
}

enum Builder {
    Text(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Date(Date32Builder),
    Flag(BooleanBuilder),
    Timestamp(TimestampMillisecondBuilder),
}

/// A field that passed its column's parser.
#[derive(Clone, Copy)]
enum Cell<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Float(f64),
    Date(i32),
    Flag(bool),
    Timestamp(i64),
}

/// Accumulates parsed rows of one table into record batches.
pub struct RowParser {
    layout: &'static TableLayout,
    /// Per field of a line: its column and how it is read.
    fields: Vec<(usize, ColumnKind)>,
    schema: SchemaRef,
    builders: Vec<Builder>,
    feed: &'static str,
    rows: usize,
    /// The unique key's column and the keys seen so far, for tables that have one.
    key: Option<(usize, IdRuns)>,
}

/// What became of a line that parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Buffered for storing.
    Row,
    /// Its unique key came earlier in the file: counted, not stored.
    Duplicate,
}

fn parse_cell<'a>(kind: ColumnKind, text: &'a str) -> Result<Cell<'a>, &'static str> {
    if text.is_empty() {
        return Ok(Cell::Null);
    }
    Ok(match kind {
        ColumnKind::Text => Cell::Text(text),
        ColumnKind::Int => Cell::Int(text.parse().map_err(|_| "not an integer")?),
        ColumnKind::Float => {
            let value: f64 = text.parse().map_err(|_| "not a number")?;
            if !value.is_finite() {
                return Err("not a finite number");
            }
            Cell::Float(value)
        }
        ColumnKind::Date8 => {
            if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err("not a YYYYMMDD date");
            }
            let date = NaiveDate::parse_from_str(text, "%Y%m%d")
                .map_err(|_| "not a valid YYYYMMDD date")?;
            Cell::Date(days_since_epoch(date))
        }
        ColumnKind::Flag => match text {
            "0" => Cell::Flag(false),
            "1" => Cell::Flag(true),
            _ => return Err("not 0 or 1"),
        },
        ColumnKind::Timestamp8 => {
            if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err("not a YYYYMMDD date");
            }
            let date = NaiveDate::parse_from_str(text, "%Y%m%d")
                .map_err(|_| "not a valid YYYYMMDD date")?;
            let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
            Cell::Timestamp(midnight.and_utc().timestamp_millis())
        }
        ColumnKind::Timestamp14 => {
            if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err("not a YYYYMMDDHHMMSS timestamp");
            }
            let ts = NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S")
                .map_err(|_| "not a valid YYYYMMDDHHMMSS timestamp")?;
            Cell::Timestamp(ts.and_utc().timestamp_millis())
        }
    })
}

fn days_since_epoch(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    i32::try_from((date - epoch).num_days()).expect("a YYYYMMDD date fits in i32 days")
}

impl RowParser {
    /// A parser for one table, reading lines of `format`.
    pub fn new(layout: &'static TableLayout, format: RowFormat, feed: &'static str) -> Self {
        let builders = layout
            .columns
            .iter()
            .map(|(_, kind)| match kind {
                ColumnKind::Text => Builder::Text(StringBuilder::new()),
                ColumnKind::Int => Builder::Int(Int64Builder::new()),
                ColumnKind::Float => Builder::Float(Float64Builder::new()),
                ColumnKind::Date8 => Builder::Date(Date32Builder::new()),
                ColumnKind::Flag => Builder::Flag(BooleanBuilder::new()),
                ColumnKind::Timestamp14 | ColumnKind::Timestamp8 => {
                    Builder::Timestamp(TimestampMillisecondBuilder::new())
                }
            })
            .collect();
        Self {
            layout,
            fields: format.fields(layout),
            key: layout.unique_key.map(|key| {
                let column = layout.columns.iter().position(|c| c.0 == key);
                (column.expect("the unique key is a column"), IdRuns::new())
            }),
            schema: layout.schema(),
            builders,
            feed,
            rows: 0,
        }
    }

    /// The schema of the batches this parser produces.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Rows buffered since the last `finish_batch`.
    pub fn buffered_rows(&self) -> usize {
        self.rows
    }

    /// The unique keys of the rows buffered so far (empty for tables without one).
    pub fn take_keys(&mut self) -> IdRuns {
        self.key
            .as_mut()
            .map(|(_, ids)| std::mem::take(ids))
            .unwrap_or_default()
    }

    /// Parses one line (without its line ending). A good row is buffered, unless its unique key
    /// came earlier in the file; a bad one comes back as a quarantine record and leaves the
    /// buffered rows untouched.
    pub fn push_line(&mut self, line_no: u64, bytes: &[u8]) -> Result<Pushed, QuarantinedLine> {
        let quarantine = |reason: String| QuarantinedLine {
            line_no,
            reason,
            raw: bytes.to_vec(),
        };
        let line = std::str::from_utf8(bytes)
            .map_err(|e| quarantine(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
        let expected = self.fields.len();
        let found = line.split('\t').count();
        if found != expected {
            return Err(quarantine(format!(
                "expected {expected} fields, found {found}"
            )));
        }
        // Validate the whole row before touching the builders, so a bad field cannot leave a
        // half-appended row behind.
        let mut cells: Vec<Cell<'_>> = vec![Cell::Null; self.layout.columns.len()];
        for (field, (column, kind)) in line.split('\t').zip(&self.fields) {
            match parse_cell(*kind, field) {
                Ok(cell) => cells[*column] = cell,
                Err(why) => {
                    let name = self.layout.columns[*column].0;
                    return Err(quarantine(format!("column {name}: {field:?} is {why}")));
                }
            }
        }
        if let Some((column, ids)) = &mut self.key {
            if let Cell::Int(id) = cells[*column] {
                if !ids.insert(id) {
                    return Ok(Pushed::Duplicate);
                }
            }
        }
        for (builder, cell) in self.builders.iter_mut().zip(&cells) {
            match (builder, *cell) {
                (Builder::Text(b), Cell::Text(v)) => b.append_value(v),
                (Builder::Text(b), _) => b.append_null(),
                (Builder::Int(b), Cell::Int(v)) => b.append_value(v),
                (Builder::Int(b), _) => b.append_null(),
                (Builder::Float(b), Cell::Float(v)) => b.append_value(v),
                (Builder::Float(b), _) => b.append_null(),
                (Builder::Date(b), Cell::Date(v)) => b.append_value(v),
                (Builder::Date(b), _) => b.append_null(),
                (Builder::Flag(b), Cell::Flag(v)) => b.append_value(v),
                (Builder::Flag(b), _) => b.append_null(),
                (Builder::Timestamp(b), Cell::Timestamp(v)) => b.append_value(v),
                (Builder::Timestamp(b), _) => b.append_null(),
            }
        }
        self.rows += 1;
        Ok(Pushed::Row)
    }

    /// Takes the buffered rows as one record batch.
    ///
    /// # Errors
    /// Only if the builders disagree with the schema, which would be a bug.
    pub fn finish_batch(&mut self) -> Result<RecordBatch, ArrowError> {
        let feed: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![self.feed; self.rows]));
        let columns: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    Builder::Text(b) => Arc::new(b.finish()),
                    Builder::Int(b) => Arc::new(b.finish()),
                    Builder::Float(b) => Arc::new(b.finish()),
                    Builder::Date(b) => Arc::new(b.finish()),
                    Builder::Flag(b) => Arc::new(b.finish()),
                    Builder::Timestamp(b) => Arc::new(b.finish()),
                }
            })
            .chain([feed])
            .collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Date32Type, Float64Type, Int64Type, TimestampMillisecondType};

    /// A row whose every field differs from every other, so a column shift cannot go unseen.
    pub(crate) fn distinct_row() -> Vec<String> {
        EVENTS
            .columns
            .iter()
            .enumerate()
            .map(|(i, (name, kind))| match kind {
                Text => format!("{name}-v{i}"),
                Int => (1000 + i as i64).to_string(),
                Float => format!("{}.25", i),
                Date8 => "20150217".into(),
                Flag => "1".into(),
                Timestamp14 => "20150218230000".into(),
                ColumnKind::Timestamp8 => unreachable!("not a stored column kind"),
            })
            .collect()
    }

    #[test]
    fn events_layout_has_61_columns_in_gdelt_order() {
        assert_eq!(EVENTS.columns.len(), 61);
        assert_eq!(EVENTS.columns[26].0, "EventCode");
        assert_eq!(EVENTS.columns[53].0, "ActionGeo_CountryCode");
        assert_eq!(EVENTS.columns[60].0, "SOURCEURL");
    }

    #[test]
    fn real_mentions_and_gkg_rows_parse_whole() {
        for (layout, file, rows) in [
            (&MENTIONS, "excerpts/aamend-spark-gdelt/mentions.csv", 100),
            (&MENTIONS, "excerpts/aamend-spark-gdelt/mentionsT.csv", 100),
            (&GKG, "excerpts/aamend-spark-gdelt/gkg.csv", 100),
            (&GKG, "excerpts/aamend-spark-gdelt/gkgT.csv", 100),
            (&EVENTS, "excerpts/aamend-spark-gdelt/eventsT.csv", 100),
        ] {
            let Some(text) = crate::test_support::shared_file(file) else {
                return;
            };
            let mut p = RowParser::new(layout, RowFormat::Native, "english");
            for (i, line) in text.lines().enumerate() {
                p.push_line(i as u64 + 1, line.as_bytes())
                    .unwrap_or_else(|q| panic!("{file}: {q:?}"));
            }
            let batch = p.finish_batch().unwrap();
            assert_eq!(batch.num_rows(), rows, "{file}");
        }
        let text =
            crate::test_support::shared_file("excerpts/aamend-spark-gdelt/mentionsT.csv").unwrap();
        let mut p = RowParser::new(&MENTIONS, RowFormat::Native, "translingual");
        p.push_line(1, text.lines().next().unwrap().as_bytes())
            .unwrap();
        let batch = p.finish_batch().unwrap();
        assert!(batch
            .column(14)
            .as_string::<i32>()
            .value(0)
            .starts_with("srclc:"));
    }

    #[test]
    fn gdelt_1_rows_map_by_name_onto_the_2_0_columns() {
        let Some(text) =
            crate::test_support::shared_file("excerpts/aamend-spark-gdelt/events1.csv")
        else {
            return;
        };
        let mut history = RowParser::new(&EVENTS, RowFormat::EventsV1History, "v1");
        let mut daily = RowParser::new(&EVENTS, RowFormat::EventsV1Daily, "v1");
        for (i, line) in text.lines().enumerate() {
            let parser = match line.split('\t').count() {
                57 => &mut history,
                58 => &mut daily,
                n => panic!("line {}: {n} fields", i + 1),
            };
            parser
                .push_line(i as u64 + 1, line.as_bytes())
                .unwrap_or_else(|q| panic!("{q:?}"));
        }
        let history = history.finish_batch().unwrap();
        let daily = daily.finish_batch().unwrap();
        assert_eq!((history.num_rows(), daily.num_rows()), (40, 60));
        let column = |name: &str| EVENTS.columns.iter().position(|c| c.0 == name).unwrap();
        // The excerpt's second line: GlobalEventID 1, an AGR actor in Nigeria, added 2013-02-03.
        let row = 1;
        assert_eq!(history.column(0).as_primitive::<Int64Type>().value(row), 1);
        assert_eq!(
            history
                .column(column("Actor2Code"))
                .as_string::<i32>()
                .value(row),
            "AGR"
        );
        assert_eq!(
            history
                .column(column("EventCode"))
                .as_string::<i32>()
                .value(row),
            "030"
        );
        let geo = history
            .column(column("ActionGeo_FullName"))
            .as_string::<i32>();
        assert_eq!(geo.value(row), "Nigeria");
        let country = history
            .column(column("ActionGeo_CountryCode"))
            .as_string::<i32>();
        assert_eq!(country.value(row), "NI");
        assert_eq!(
            history
                .column(column("ActionGeo_Lat"))
                .as_primitive::<Float64Type>()
                .value(row),
            10.0
        );
        assert_eq!(
            history
                .column(column("ActionGeo_FeatureID"))
                .as_string::<i32>()
                .value(row),
            "0"
        );
        for adm2 in [
            "Actor1Geo_ADM2Code",
            "Actor2Geo_ADM2Code",
            "ActionGeo_ADM2Code",
        ] {
            assert_eq!(history.column(column(adm2)).null_count(), 40, "{adm2}");
            assert_eq!(daily.column(column(adm2)).null_count(), 60, "{adm2}");
        }
        assert_eq!(history.column(column("SOURCEURL")).null_count(), 40);
        assert_eq!(daily.column(column("SOURCEURL")).null_count(), 0);
        let added = history.column(column("DATEADDED"));
        // 2013-02-03 00:00:00 UTC.
        assert_eq!(
            added.as_primitive::<TimestampMillisecondType>().value(row),
            1_359_849_600_000
        );
        let feed = history.column(EVENTS.columns.len()).as_string::<i32>();
        assert_eq!(feed.value(0), "v1");
        // A 2.0 row is not a 1.0 row.
        let mut v1 = RowParser::new(&EVENTS, RowFormat::EventsV1Daily, "v1");
        let err = v1
            .push_line(9, distinct_row().join("\t").as_bytes())
            .unwrap_err();
        assert_eq!(err.reason, "expected 58 fields, found 61");
    }

    #[test]
    fn an_event_id_seen_earlier_in_the_file_is_a_duplicate_not_a_row() {
        let mut p = RowParser::new(&EVENTS, RowFormat::Native, "english");
        let mut row = distinct_row();
        let expected = [Pushed::Row, Pushed::Row, Pushed::Duplicate, Pushed::Row];
        for (id, expected) in ["7", "8", "7", "6"].into_iter().zip(expected) {
            row[0] = id.into();
            assert_eq!(p.push_line(1, row.join("\t").as_bytes()).unwrap(), expected);
        }
        assert_eq!(p.buffered_rows(), 3);
        assert_eq!(p.take_keys().runs(), vec![(6, 8)]);
        // Mentions repeat event ids by design.
        let mut m = RowParser::new(&MENTIONS, RowFormat::Native, "english");
        let line = "1\t20150218230000\t20150218230000\t1\ts\tu\t1\t-1\t-1\t-1\t1\t10\t100\t1.5\t\t";
        for _ in 0..2 {
            assert_eq!(m.push_line(1, line.as_bytes()).unwrap(), Pushed::Row);
        }
        assert!(m.take_keys().is_empty());
    }

    #[test]
    fn every_column_lands_in_its_own_place() {
        let mut p = RowParser::new(&EVENTS, RowFormat::Native, "english");
        p.push_line(1, distinct_row().join("\t").as_bytes())
            .unwrap();
        let batch = p.finish_batch().unwrap();
        assert_eq!(batch.num_rows(), 1);
        for (i, (name, kind)) in EVENTS.columns.iter().enumerate() {
            let col = batch.column(i);
            match kind {
                Text => assert_eq!(col.as_string::<i32>().value(0), format!("{name}-v{i}")),
                Int => assert_eq!(col.as_primitive::<Int64Type>().value(0), 1000 + i as i64),
                Float => assert_eq!(col.as_primitive::<Float64Type>().value(0), i as f64 + 0.25),
                Date8 => assert_eq!(col.as_primitive::<Date32Type>().value(0), 16483),
                Flag => assert!(col.as_boolean().value(0)),
                Timestamp14 => assert_eq!(
                    col.as_primitive::<TimestampMillisecondType>().value(0),
                    1_424_300_400_000
                ),
                ColumnKind::Timestamp8 => unreachable!("not a stored column kind"),
            }
        }
    }

    #[test]
    fn wrong_field_counts_are_quarantined_with_line_number() {
        let mut p = RowParser::new(&EVENTS, RowFormat::Native, "english");
        let row = distinct_row();
        let short = row[..60].join("\t");
        let long = format!("{}\textra", row.join("\t"));
        let err = p.push_line(7, short.as_bytes()).unwrap_err();
        assert_eq!(err.line_no, 7);
        assert_eq!(err.reason, "expected 61 fields, found 60");
        assert_eq!(err.raw, short.as_bytes());
        let err = p.push_line(8, long.as_bytes()).unwrap_err();
        assert_eq!(
            (err.line_no, err.reason.as_str()),
            (8, "expected 61 fields, found 62")
        );
        assert_eq!(p.buffered_rows(), 0);
    }

    #[test]
    fn bad_numbers_dates_and_utf8_are_quarantined_and_leave_no_partial_row() {
        let mut p = RowParser::new(&EVENTS, RowFormat::Native, "english");
        let mut row = distinct_row();
        row[34] = "n/a".into();
        let err = p.push_line(3, row.join("\t").as_bytes()).unwrap_err();
        assert_eq!(err.reason, "column AvgTone: \"n/a\" is not a number");
        let mut row = distinct_row();
        row[1] = "2015021".into();
        let err = p.push_line(4, row.join("\t").as_bytes()).unwrap_err();
        assert_eq!(err.reason, "column Day: \"2015021\" is not a YYYYMMDD date");
        let mut bytes = distinct_row().join("\t").into_bytes();
        bytes[2] = 0xff;
        let err = p.push_line(5, &bytes).unwrap_err();
        assert_eq!(err.reason, "invalid UTF-8 at byte 2");
        // Kept byte for byte, for re-processing.
        assert_eq!(err.raw, bytes);
        p.push_line(6, distinct_row().join("\t").as_bytes())
            .unwrap();
        let batch = p.finish_batch().unwrap();
        assert_eq!(batch.num_rows(), 1);
        for col in batch.columns() {
            assert_eq!(col.len(), 1);
        }
    }

    #[test]
    fn quotes_stay_literal_codes_keep_zeros_and_empty_is_null() {
        let mut p = RowParser::new(&EVENTS, RowFormat::Native, "english");
        let mut row = distinct_row();
        row[6] = "\"QUOTED NAME".into();
        row[26] = "010".into();
        row[27] = "04".into();
        row[28] = "04".into();
        row[7] = String::new();
        row[40] = "0".into();
        let mut second = distinct_row();
        second[0] = "1001".into();
        second[6] = "next\"".into();
        p.push_line(1, row.join("\t").as_bytes()).unwrap();
        p.push_line(2, second.join("\t").as_bytes()).unwrap();
        let batch = p.finish_batch().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let names = batch.column(6).as_string::<i32>();
        assert_eq!(names.value(0), "\"QUOTED NAME");
        assert_eq!(names.value(1), "next\"");
        assert_eq!(batch.column(26).as_string::<i32>().value(0), "010");
        assert_eq!(batch.column(27).as_string::<i32>().value(0), "04");
        assert!(batch.column(7).is_null(0));
        assert_eq!(batch.column(40).as_primitive::<Float64Type>().value(0), 0.0);
    }
}
