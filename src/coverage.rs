//! Completeness: per day and table, what the listing promised, what is stored, what failed,
//! and which 15-minute slots the source never published.

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde::Serialize;
use utoipa::ToSchema;

use crate::catalog::{Catalog, CatalogError, DayCounts};
use crate::ingest::listing::{Feed, FileKind};

/// GDELT 2.0's first batch.
fn feed_start() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2015, 2, 18)
        .and_then(|d| d.and_hms_opt(23, 0, 0))
        .expect("a valid time")
}

/// The files a feed had on a day. GDELT 2.0: 96 15-minute slots, 4 on its first day, none
/// before. GDELT 1.0: one daily file from 2013-04-01, one monthly file on the first of each
/// month from 2006-01 to 2013-03, one yearly file on each January 1st from 1979 to 2005.
pub fn slots_on(feed: Feed, day: NaiveDate) -> i64 {
    if feed == Feed::V1 {
        let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a valid date");
        let published = if day >= ymd(2013, 4, 1) {
            true
        } else if day >= ymd(2006, 1, 1) {
            day.day() == 1
        } else {
            day >= ymd(1979, 1, 1) && day.ordinal() == 1
        };
        return i64::from(published);
    }
    let start = feed_start();
    let day_start = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    let day_end = day_start + chrono::Duration::days(1);
    if day_end <= start {
        0
    } else if day_start >= start {
        96
    } else {
        (day_end - start).num_minutes() / 15
    }
}

/// One day of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CoverageDay {
    #[schema(example = "2015-02-19")]
    pub date: String,
    /// Files the feed had that day: 15-minute slots for GDELT 2.0, daily, monthly or yearly
    /// files for GDELT 1.0.
    #[schema(example = 96)]
    pub slots: i64,
    /// Files the source's listing promised (seen by gdelt-lake).
    #[schema(example = 90)]
    pub expected: i64,
    pub ingested: i64,
    /// Failed, with reasons in the catalog; retried up to `ingest.max_attempts`.
    pub failed: i64,
    /// Seen but not attempted yet (or running).
    pub pending: i64,
    /// Slots with no file in the listing; null when the day's listing was not read whole
    /// (only a backfill reads whole days).
    #[schema(example = 6)]
    pub missing_upstream: Option<i64>,
    pub rows_stored: i64,
    pub rows_quarantined: i64,
    /// Of the ingested files, those whose rows retention has dropped from the lake since
    /// (`lake.retention_days`); they are not fetched again.
    pub expired: i64,
}

/// Errors building a coverage report.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("the range spans {days} days; at most {max} are reported at once: narrow since/until")]
    TooLong { days: i64, max: i64 },
    #[error("since ({since}) is after until ({until})")]
    Reversed { since: NaiveDate, until: NaiveDate },
    #[error("until ({until}) is after today ({today}, UTC): the feed has no slots there yet")]
    Future { until: NaiveDate, today: NaiveDate },
    #[error("the {feed} feed has no {table} files (GDELT 1.0 has only events)")]
    NotInFeed {
        feed: &'static str,
        table: &'static str,
    },
}

/// Largest range reported at once.
pub const MAX_DAYS: i64 = 3660;

/// Every day from `since` to `until` (inclusive) for one kind of file of one feed, oldest first.
///
/// # Errors
/// A range over `MAX_DAYS` days, or a catalog error.
pub fn report(
    catalog: &Catalog,
    feed: Feed,
    kind: FileKind,
    since: NaiveDate,
    until: NaiveDate,
) -> Result<Vec<CoverageDay>, CoverageError> {
    if since > until {
        return Err(CoverageError::Reversed { since, until });
    }
    let today = chrono::Utc::now().date_naive();
    if until > today {
        return Err(CoverageError::Future { until, today });
    }
    if !feed.has(kind) {
        return Err(CoverageError::NotInFeed {
            feed: feed.as_str(),
            table: kind.layout().name,
        });
    }
    let days = (until - since).num_days() + 1;
    if days > MAX_DAYS {
        return Err(CoverageError::TooLong {
            days,
            max: MAX_DAYS,
        });
    }
    let fmt = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let known = catalog.coverage(feed.as_str(), kind.as_str(), &fmt(since), &fmt(until))?;
    let mut known = known.into_iter().peekable();
    let mut out = Vec::with_capacity(days.max(0) as usize);
    for day in since.iter_days().take_while(|d| *d <= until) {
        let date = fmt(day);
        let counts = match known.peek() {
            Some(k) if k.day == date => known.next().expect("peeked"),
            _ => DayCounts {
                day: date.clone(),
                ..DayCounts::default()
            },
        };
        let slots = slots_on(feed, day);
        out.push(CoverageDay {
            date,
            slots,
            expected: counts.listed,
            ingested: counts.ingested,
            failed: counts.failed,
            pending: counts.pending,
            missing_upstream: counts.listing_read.then(|| (slots - counts.listed).max(0)),
            rows_stored: counts.rows_stored,
            rows_quarantined: counts.rows_quarantined,
            expired: counts.expired,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_per_day() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        let en = Feed::English;
        assert_eq!(slots_on(en, d(2015, 2, 17)), 0);
        assert_eq!(slots_on(en, d(2015, 2, 18)), 4);
        assert_eq!(slots_on(en, d(2015, 2, 19)), 96);
        assert_eq!(slots_on(Feed::Translingual, d(2024, 2, 29)), 96);
        let v1 = Feed::V1;
        assert_eq!(slots_on(v1, d(1978, 1, 1)), 0);
        assert_eq!(slots_on(v1, d(1979, 1, 1)), 1);
        assert_eq!(slots_on(v1, d(1979, 1, 2)), 0);
        assert_eq!(slots_on(v1, d(2006, 2, 1)), 1);
        assert_eq!(slots_on(v1, d(2013, 3, 2)), 0);
        assert_eq!(slots_on(v1, d(2013, 4, 2)), 1);
    }
}
