//! Event filters, turned into a SQL condition over the events table with bound parameters.
//!
//! Every value a user supplies travels as a bound parameter; column names come from the fixed
//! schema only. Each filter is checked when parsed (see `http::params`), so the SQL built here
//! never fails on user input.

use chrono::{Datelike, NaiveDate};
use duckdb::types::Value;

use super::DateRange;

/// A bounding box on `ActionGeo_Lat`/`ActionGeo_Long`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

/// Filters that combine (all must hold). Empty lists and `None` mean "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// Batch dates: which partitions are read (a batch's rows all sit in its date's partition;
    /// a GDELT 1.0 history file sits in the first day it covers).
    pub batch: DateRange,
    /// Event dates (`Day`), inclusive.
    pub day_from: Option<NaiveDate>,
    pub day_to: Option<NaiveDate>,
    /// CAMEO country codes (3 letters) of actor 1 / actor 2.
    pub actor1_country: Vec<String>,
    pub actor2_country: Vec<String>,
    /// FIPS 10-4 country codes (2 letters) of `ActionGeo_CountryCode`.
    pub action_country: Vec<String>,
    /// Prefixes of `EventCode`, `EventBaseCode`, `EventRootCode` (text, leading zeros kept):
    /// `04` matches `04`, `040`, `0411`...
    pub event_code: Vec<String>,
    pub event_base: Vec<String>,
    pub event_root: Vec<String>,
    /// `QuadClass` values (1..=4).
    pub quad_class: Vec<i64>,
    pub goldstein_min: Option<f64>,
    pub goldstein_max: Option<f64>,
    pub tone_min: Option<f64>,
    pub tone_max: Option<f64>,
    pub bbox: Option<BoundingBox>,
    /// Case-insensitive substring of the actor names, geo full names or SOURCEURL.
    pub text: Option<String>,
    /// Feeds (`english`, `translingual`, `v1`).
    pub feeds: Vec<String>,
}

/// The columns `text` is matched against.
pub const TEXT_COLUMNS: [&str; 6] = [
    "Actor1Name",
    "Actor2Name",
    "Actor1Geo_FullName",
    "Actor2Geo_FullName",
    "ActionGeo_FullName",
    "SOURCEURL",
];

impl EventFilter {
    /// The batch dates whose partitions can hold a match. `day_from` also bounds them from
    /// below: an event is added on or after its `Day` (a local date, so up to a day ahead of
    /// the UTC batch date), and a GDELT 1.0 history file, filed under the first day it covers,
    /// holds the events of its year (before 2006) or month (2006-01 to 2013-03).
    pub fn partitions(&self) -> DateRange {
        let first_partition = |day: NaiveDate| {
            if day < NaiveDate::from_ymd_opt(2006, 1, 1).expect("valid date") {
                day.with_ordinal(1).expect("day 1 exists")
            } else if day < NaiveDate::from_ymd_opt(2013, 4, 1).expect("valid date") {
                day.with_day(1).expect("day 1 exists")
            } else {
                day.pred_opt().unwrap_or(day)
            }
        };
        DateRange {
            since: match (self.batch.since, self.day_from.map(first_partition)) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            until: self.batch.until,
        }
    }

    /// Whether the filters leave no possible batch (for example `day_from` after `until`).
    pub fn is_empty_range(&self) -> bool {
        let range = self.partitions();
        matches!((range.since, range.until), (Some(s), Some(u)) if s > u)
    }

    /// A SQL condition (`TRUE` when there is no filter) and its parameters, in order.
    pub fn to_sql(&self) -> (String, Vec<Value>) {
        let mut parts: Vec<String> = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        let days = |d: NaiveDate| Value::Text(d.format("%Y-%m-%d").to_string());
        if let Some(d) = self.day_from {
            parts.push("\"Day\" >= CAST(? AS DATE)".into());
            params.push(days(d));
        }
        if let Some(d) = self.day_to {
            parts.push("\"Day\" <= CAST(? AS DATE)".into());
            params.push(days(d));
        }
        for (column, values) in [
            ("Actor1CountryCode", &self.actor1_country),
            ("Actor2CountryCode", &self.actor2_country),
            ("ActionGeo_CountryCode", &self.action_country),
            ("feed", &self.feeds),
        ] {
            if !values.is_empty() {
                parts.push(format!(
                    "\"{column}\" IN ({})",
                    vec!["?"; values.len()].join(", ")
                ));
                params.extend(values.iter().map(|v| Value::Text(v.clone())));
            }
        }
        for (column, prefixes) in [
            ("EventCode", &self.event_code),
            ("EventBaseCode", &self.event_base),
            ("EventRootCode", &self.event_root),
        ] {
            if !prefixes.is_empty() {
                let any = vec![format!("starts_with(\"{column}\", ?)"); prefixes.len()];
                parts.push(format!("({})", any.join(" OR ")));
                params.extend(prefixes.iter().map(|v| Value::Text(v.clone())));
            }
        }
        if !self.quad_class.is_empty() {
            parts.push(format!(
                "\"QuadClass\" IN ({})",
                vec!["?"; self.quad_class.len()].join(", ")
            ));
            params.extend(self.quad_class.iter().map(|v| Value::BigInt(*v)));
        }
        for (column, op, bound) in [
            ("GoldsteinScale", ">=", self.goldstein_min),
            ("GoldsteinScale", "<=", self.goldstein_max),
            ("AvgTone", ">=", self.tone_min),
            ("AvgTone", "<=", self.tone_max),
        ] {
            if let Some(bound) = bound {
                parts.push(format!("\"{column}\" {op} ?"));
                params.push(Value::Double(bound));
            }
        }
        if let Some(b) = self.bbox {
            parts.push(
                "\"ActionGeo_Long\" BETWEEN ? AND ? AND \"ActionGeo_Lat\" BETWEEN ? AND ?".into(),
            );
            params.extend([b.min_lon, b.max_lon, b.min_lat, b.max_lat].map(Value::Double));
        }
        if let Some(text) = &self.text {
            let any: Vec<String> = TEXT_COLUMNS
                .iter()
                .map(|c| format!("contains(lower(\"{c}\"), ?)"))
                .collect();
            parts.push(format!("({})", any.join(" OR ")));
            let needle = text.to_lowercase();
            params.extend(TEXT_COLUMNS.iter().map(|_| Value::Text(needle.clone())));
        }
        if parts.is_empty() {
            ("TRUE".into(), params)
        } else {
            (parts.join(" AND "), params)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_filter_is_true_and_filters_bind_every_value() {
        assert_eq!(EventFilter::default().to_sql(), ("TRUE".into(), vec![]));
        let filter = EventFilter {
            action_country: vec!["UP".into(), "RS".into()],
            event_root: vec!["04".into()],
            quad_class: vec![1],
            tone_min: Some(-2.5),
            text: Some("Kyiv'; DROP".into()),
            ..EventFilter::default()
        };
        let (sql, params) = filter.to_sql();
        assert_eq!(
            sql,
            "\"ActionGeo_CountryCode\" IN (?, ?) AND (starts_with(\"EventRootCode\", ?)) \
             AND \"QuadClass\" IN (?) AND \"AvgTone\" >= ? AND (contains(lower(\"Actor1Name\"), ?) \
             OR contains(lower(\"Actor2Name\"), ?) OR contains(lower(\"Actor1Geo_FullName\"), ?) \
             OR contains(lower(\"Actor2Geo_FullName\"), ?) OR contains(lower(\"ActionGeo_FullName\"), ?) \
             OR contains(lower(\"SOURCEURL\"), ?))"
        );
        assert_eq!(params.len(), 2 + 1 + 1 + 1 + 6);
        assert_eq!(params[5], Value::Text("kyiv'; drop".into()));
    }

    #[test]
    fn day_from_prunes_older_partitions() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let filter = EventFilter {
            batch: DateRange {
                since: Some(d("2015-02-18")),
                until: Some(d("2015-02-20")),
            },
            day_from: Some(d("2015-02-19")),
            ..EventFilter::default()
        };
        // A day earlier: the event's local date can be ahead of the UTC batch date.
        assert_eq!(filter.partitions().since, Some(d("2015-02-18")));
        let later = EventFilter {
            day_from: Some(d("2015-02-20")),
            ..filter.clone()
        };
        assert_eq!(later.partitions().since, Some(d("2015-02-19")));
        let impossible = EventFilter {
            day_from: Some(d("2015-02-22")),
            ..filter
        };
        assert!(impossible.is_empty_range());
    }

    #[test]
    fn day_from_keeps_the_gdelt_1_history_file_that_covers_it() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let from = |day: &str| EventFilter {
            day_from: Some(d(day)),
            ..EventFilter::default()
        };
        // 1990.zip sits in date=1990-01-01; 200607.zip in date=2006-07-01.
        assert_eq!(from("1990-06-15").partitions().since, Some(d("1990-01-01")));
        assert_eq!(from("2006-07-20").partitions().since, Some(d("2006-07-01")));
        assert_eq!(from("2013-04-02").partitions().since, Some(d("2013-04-01")));
    }
}
