//! Completeness: per day and table, what the listing promised, what is stored, what failed,
//! and which 15-minute slots the source never published.

use chrono::{NaiveDate, NaiveDateTime};
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

/// The 15-minute slots GDELT 2.0 had on a day: 96, 4 on its first day, none before.
pub fn slots_on(day: NaiveDate) -> i64 {
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
    /// 15-minute slots the feed had that day.
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
}

/// Errors building a coverage report.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("the range spans {days} days; at most {max} are reported at once")]
    TooLong { days: i64, max: i64 },
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
        let slots = slots_on(day);
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
        assert_eq!(slots_on(d(2015, 2, 17)), 0);
        assert_eq!(slots_on(d(2015, 2, 18)), 4);
        assert_eq!(slots_on(d(2015, 2, 19)), 96);
        assert_eq!(slots_on(d(2024, 2, 29)), 96);
    }
}
