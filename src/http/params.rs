//! Parsing and checking query parameters, so every bad value gets a 400 naming it.

use chrono::NaiveDate;

use super::error::ApiError;
use crate::query::DateRange;

/// An integer in `low..=high`, or `default` when absent.
pub fn bounded(
    name: &'static str,
    raw: Option<&str>,
    default: usize,
    low: usize,
    high: usize,
) -> Result<usize, ApiError> {
    let Some(raw) = raw else { return Ok(default) };
    raw.trim()
        .parse::<usize>()
        .ok()
        .filter(|v| (low..=high).contains(v))
        .ok_or_else(|| {
            ApiError::invalid(
                name,
                format!("{name} must be an integer from {low} to {high}, got {raw:?}"),
            )
        })
}

/// An optional `YYYY-MM-DD` date.
pub fn date(name: &'static str, raw: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|_| raw.len() == 10)
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid(
                name,
                format!("{name} must be a date as YYYY-MM-DD, got {raw:?}"),
            )
        })
}

/// `since` and `until`, inclusive, with `since <= until`.
pub fn range(since: Option<&str>, until: Option<&str>) -> Result<DateRange, ApiError> {
    let range = DateRange {
        since: date("since", since)?,
        until: date("until", until)?,
    };
    if let (Some(s), Some(u)) = (range.since, range.until) {
        if s > u {
            return Err(ApiError::invalid(
                "since",
                format!("since ({s}) is after until ({u})"),
            ));
        }
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_messages() {
        assert_eq!(bounded("limit", None, 50, 1, 500).unwrap(), 50);
        assert_eq!(bounded("limit", Some("500"), 50, 1, 500).unwrap(), 500);
        assert_eq!(
            bounded("limit", Some("0"), 50, 1, 500)
                .unwrap_err()
                .to_string(),
            "limit must be an integer from 1 to 500, got \"0\""
        );
        assert_eq!(
            date("since", Some("2015-2-18")).unwrap_err().to_string(),
            "since must be a date as YYYY-MM-DD, got \"2015-2-18\""
        );
        assert_eq!(
            range(Some("2015-02-19"), Some("2015-02-18"))
                .unwrap_err()
                .to_string(),
            "since (2015-02-19) is after until (2015-02-18)"
        );
        assert_eq!(
            date("until", Some("2015-02-30")).unwrap_err().to_string(),
            "until must be a date as YYYY-MM-DD, got \"2015-02-30\""
        );
    }
}
