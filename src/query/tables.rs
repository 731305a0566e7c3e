//! Pages of the mentions and GKG tables, with filters over their own columns, in the same
//! shape as event pages: filters that combine, a signed keyset cursor, freshness.
//!
//! Pages walk a total order, newest batch first: by batch time, feed, then a number unique in
//! the batch. GKG records carry one (`GKGRECORDID` is `<batch>-<n>`, `-T<n>` translingual);
//! mentions have no unique column, so a mention's number is its row in its batch's Parquet
//! file (one file per batch, feed and table, never rewritten by ingestion). New batches land
//! before or after a cursor, never across it: a walk sees no row twice and misses none while
//! ingestion runs. (Compacting a day rewrites its files, so a mentions walk in progress over
//! that day may see its rows in another order; event and GKG walks are unaffected.)

use duckdb::types::Value;
use serde::Serialize;
use utoipa::ToSchema;

use super::{json_row, position_of, DateRange, Freshness, QueryEngine, QueryError};
use crate::ingest::parse::{ColumnKind, TableLayout, FEED_COLUMN, GKG, MENTIONS};

/// Filters on mentions (all must hold; empty lists and `None` mean "any").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MentionFilter {
    /// Batch dates: which partitions are read.
    pub batch: DateRange,
    /// `GlobalEventID` values: the mentions of these events.
    pub event_ids: Vec<i64>,
    /// `MentionSourceName` values (lower case, as GDELT writes them: `bbc.co.uk`).
    pub sources: Vec<String>,
    /// `MentionType` values (1 web, 2 citation only, 3 core, 4 DTIC, 5 JSTOR, 6 non-textual).
    pub mention_types: Vec<i64>,
    /// Smallest `Confidence` (10..=100).
    pub min_confidence: Option<i64>,
    /// Case-insensitive substring of `MentionIdentifier` (the article's URL).
    pub text: Option<String>,
    pub feeds: Vec<String>,
}

/// Filters on GKG records (all must hold; empty lists and `None` mean "any").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GkgFilter {
    pub batch: DateRange,
    /// Whole theme names (`PROTEST`, `TAX_FNCACT_PRESIDENT`): a record matches if its
    /// `Themes` list has any of them.
    pub themes: Vec<String>,
    /// Case-insensitive substrings of `Persons`: any of them.
    pub persons: Vec<String>,
    /// Case-insensitive substrings of `Organizations`: any of them.
    pub organizations: Vec<String>,
    /// `SourceCommonName` values (`bbc.co.uk`).
    pub sources: Vec<String>,
    /// Case-insensitive substring of `DocumentIdentifier` (the article's URL).
    pub text: Option<String>,
    pub feeds: Vec<String>,
}

/// A filter over one of the two tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableFilter {
    Mentions(MentionFilter),
    Gkg(GkgFilter),
}

/// A page of mentions or GKG records.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TablePage {
    /// Rows in this page.
    pub count: usize,
    /// Pass as `cursor=` with the same filters for the next page; null on the last.
    pub next_cursor: Option<String>,
    /// Rows with GDELT's column names and `feed`; timestamps as ISO 8601 UTC.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    pub freshness: Freshness,
}

/// The sort key of a missing value: first in ascending order, last in descending.
const NULL_KEY: &str = "-9223372036854775807";

/// `column IN (?, ...)` over `values`, when there are any.
fn any_of(parts: &mut Vec<String>, params: &mut Vec<Value>, column: &str, values: Vec<Value>) {
    if !values.is_empty() {
        parts.push(format!(
            "\"{column}\" IN ({})",
            vec!["?"; values.len()].join(", ")
        ));
        params.extend(values);
    }
}

/// `(contains(lower(column), ?) OR ...)` over `needles`, when there are any.
fn contains_any(
    parts: &mut Vec<String>,
    params: &mut Vec<Value>,
    column: &str,
    needles: &[String],
) {
    if !needles.is_empty() {
        let any = vec![format!("contains(lower(\"{column}\"), ?)"); needles.len()];
        parts.push(format!("({})", any.join(" OR ")));
        params.extend(needles.iter().map(|n| Value::Text(n.to_lowercase())));
    }
}

fn texts(values: &[String]) -> Vec<Value> {
    values.iter().map(|v| Value::Text(v.clone())).collect()
}

fn ints(values: &[i64]) -> Vec<Value> {
    values.iter().map(|v| Value::BigInt(*v)).collect()
}

impl TableFilter {
    fn layout(&self) -> &'static TableLayout {
        match self {
            Self::Mentions(_) => &MENTIONS,
            Self::Gkg(_) => &GKG,
        }
    }

    /// The catalog's listing kind of the table.
    fn kind(&self) -> &'static str {
        match self {
            Self::Mentions(_) => "mentions",
            Self::Gkg(_) => "gkg",
        }
    }

    /// The batch time of a row in milliseconds, and its number in the batch, as SQL.
    fn order_sql(&self) -> (String, String) {
        match self {
            Self::Mentions(_) => (
                format!("coalesce(epoch_ms(\"MentionTimeDate\"), {NULL_KEY})"),
                "\"file_row_number\"".into(),
            ),
            Self::Gkg(_) => (
                format!("coalesce(epoch_ms(\"DATE\"), {NULL_KEY})"),
                format!(
                    "coalesce(TRY_CAST(regexp_extract(\"GKGRECORDID\", '-T?([0-9]+)$', 1) AS BIGINT), {NULL_KEY})"
                ),
            ),
        }
    }

    /// `read_parquet` options: mentions need each row's number in its file.
    fn read_options(&self) -> &'static str {
        match self {
            Self::Mentions(_) => ", file_row_number = true",
            Self::Gkg(_) => "",
        }
    }

    fn batch(&self) -> DateRange {
        match self {
            Self::Mentions(f) => f.batch,
            Self::Gkg(f) => f.batch,
        }
    }

    /// A SQL condition (`TRUE` when there is no filter) and its parameters, in order. Values
    /// are bound; column names come from the fixed schemas.
    pub fn to_sql(&self) -> (String, Vec<Value>) {
        let mut parts = Vec::new();
        let mut params = Vec::new();
        match self {
            Self::Mentions(f) => {
                any_of(&mut parts, &mut params, "GlobalEventID", ints(&f.event_ids));
                any_of(
                    &mut parts,
                    &mut params,
                    "MentionSourceName",
                    texts(&f.sources),
                );
                any_of(
                    &mut parts,
                    &mut params,
                    "MentionType",
                    ints(&f.mention_types),
                );
                if let Some(min) = f.min_confidence {
                    parts.push("\"Confidence\" >= ?".into());
                    params.push(Value::BigInt(min));
                }
                contains_any(
                    &mut parts,
                    &mut params,
                    "MentionIdentifier",
                    f.text.as_slice(),
                );
                any_of(&mut parts, &mut params, FEED_COLUMN, texts(&f.feeds));
            }
            Self::Gkg(f) => {
                if !f.themes.is_empty() {
                    let any =
                        vec!["list_contains(string_split(\"Themes\", ';'), ?)"; f.themes.len()];
                    parts.push(format!("({})", any.join(" OR ")));
                    params.extend(texts(&f.themes));
                }
                contains_any(&mut parts, &mut params, "Persons", &f.persons);
                contains_any(&mut parts, &mut params, "Organizations", &f.organizations);
                any_of(
                    &mut parts,
                    &mut params,
                    "SourceCommonName",
                    texts(&f.sources),
                );
                contains_any(
                    &mut parts,
                    &mut params,
                    "DocumentIdentifier",
                    f.text.as_slice(),
                );
                any_of(&mut parts, &mut params, FEED_COLUMN, texts(&f.feeds));
            }
        }
        if parts.is_empty() {
            ("TRUE".into(), params)
        } else {
            (parts.join(" AND "), params)
        }
    }
}

/// The SELECT list of a table: its columns then `feed`, timestamps as ISO 8601 UTC.
fn select_list(layout: &TableLayout) -> (String, Vec<&'static str>) {
    let columns = layout
        .columns
        .iter()
        .copied()
        .chain([(FEED_COLUMN, ColumnKind::Text)]);
    let mut names = Vec::new();
    let mut sql = Vec::new();
    for (name, kind) in columns {
        names.push(name);
        sql.push(match kind {
            ColumnKind::Timestamp14 | ColumnKind::Timestamp8 => {
                format!("strftime(\"{name}\", '%Y-%m-%dT%H:%M:%SZ') AS \"{name}\"")
            }
            ColumnKind::Date8 => format!("strftime(\"{name}\", '%Y-%m-%d') AS \"{name}\""),
            _ => format!("\"{name}\""),
        });
    }
    (sql.join(", "), names)
}

impl QueryEngine {
    /// A page of mentions or GKG records matching `filter`, newest batch first, after
    /// `cursor` (the previous page's `next_cursor`), at most `limit` rows.
    ///
    /// # Errors
    /// A cursor this server did not issue for these filters; catalog or DuckDB failures, a
    /// busy pool, the time or scan limit.
    pub async fn table_page(
        &self,
        filter: TableFilter,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<TablePage, QueryError> {
        let fingerprint = {
            use md5::{Digest, Md5};
            format!("{:x}", Md5::digest(format!("{filter:?}").as_bytes()))[..16].to_owned()
        };
        let after = match &cursor {
            Some(c) => Some(self.cursors.decode(c, &fingerprint)?),
            None => None,
        };
        let kind = filter.kind();
        let options = filter.read_options();
        let range = filter.batch();
        let ((rows, last), freshness) = self
            .run_on(
                kind,
                options,
                range,
                (Vec::new(), None),
                move |conn, source| {
                    let (mut condition, mut params) = filter.to_sql();
                    let (key, id) = filter.order_sql();
                    if let Some(p) = &after {
                        condition.push_str(&format!(
                            " AND ({key} < ? OR ({key} = ? AND (\"feed\" < ? OR \
                         (\"feed\" = ? AND {id} < ?))))"
                        ));
                        params.extend([
                            Value::BigInt(p.key),
                            Value::BigInt(p.key),
                            Value::Text(p.feed.clone()),
                            Value::Text(p.feed.clone()),
                            Value::BigInt(p.id),
                        ]);
                    }
                    let (columns, names) = select_list(filter.layout());
                    let sql = format!(
                        "SELECT {columns}, {key} AS \"__key\", \"feed\" AS \"__feed\", \
                     {id} AS \"__id\" FROM {source} WHERE {condition} \
                     ORDER BY \"__key\" DESC, \"__feed\" DESC, \"__id\" DESC LIMIT ?"
                    );
                    params.push(Value::BigInt(limit as i64 + 1));
                    let mut stmt = conn.prepare(&sql)?;
                    let mut rows = stmt.query(duckdb::params_from_iter(params))?;
                    let mut out = Vec::new();
                    let mut last = None;
                    while let Some(row) = rows.next()? {
                        if out.len() == limit {
                            return Ok((out, last));
                        }
                        out.push(json_row(row, &names)?);
                        last = Some(position_of(row, names.len())?);
                    }
                    Ok((out, None))
                },
            )
            .await?;
        Ok(TablePage {
            count: rows.len(),
            next_cursor: last.map(|p| self.cursors.encode(&p, &fingerprint)),
            rows,
            freshness,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_bind_every_value_and_name_only_schema_columns() {
        let none = TableFilter::Mentions(MentionFilter::default());
        assert_eq!(none.to_sql(), ("TRUE".into(), vec![]));
        let mentions = TableFilter::Mentions(MentionFilter {
            event_ids: vec![410412347, 410412348],
            min_confidence: Some(50),
            text: Some("BBC'; --".into()),
            ..MentionFilter::default()
        });
        let (sql, params) = mentions.to_sql();
        assert_eq!(
            sql,
            "\"GlobalEventID\" IN (?, ?) AND \"Confidence\" >= ? AND \
             (contains(lower(\"MentionIdentifier\"), ?))"
        );
        assert_eq!(
            params,
            vec![
                Value::BigInt(410412347),
                Value::BigInt(410412348),
                Value::BigInt(50),
                Value::Text("bbc'; --".into())
            ]
        );
        let gkg = TableFilter::Gkg(GkgFilter {
            themes: vec!["PROTEST".into()],
            persons: vec!["Obama".into(), "kerry".into()],
            feeds: vec!["english".into()],
            ..GkgFilter::default()
        });
        let (sql, params) = gkg.to_sql();
        assert_eq!(
            sql,
            "(list_contains(string_split(\"Themes\", ';'), ?)) AND \
             (contains(lower(\"Persons\"), ?) OR contains(lower(\"Persons\"), ?)) AND \
             \"feed\" IN (?)"
        );
        assert_eq!(params[1], Value::Text("obama".into()));
        assert_eq!(params.len(), 4);
    }
}
