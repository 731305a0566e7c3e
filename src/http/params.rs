//! Parsing and checking query parameters, so every bad value gets a 400 naming it.

use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use crate::ingest::listing::parse_feeds;
use crate::query::filter::{BoundingBox, EventFilter};
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

/// One of a fixed set of names, or `default` when absent.
pub fn choice<T: Copy>(
    name: &'static str,
    raw: Option<&str>,
    names: &[(&'static str, T)],
    default: T,
) -> Result<T, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(default);
    };
    names
        .iter()
        .find(|(n, _)| *n == raw)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let accepted: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
            ApiError::invalid(
                name,
                format!("{name} must be one of {}, got {raw:?}", accepted.join(", ")),
            )
        })
}

/// The filters every event query takes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilterQuery {
    /// First batch date to read, YYYY-MM-DD (UTC, inclusive); only those partitions are read.
    #[param(value_type = Option<String>, format = Date, example = "2015-02-18")]
    pub since: Option<String>,
    /// Last batch date to read, YYYY-MM-DD (UTC, inclusive).
    #[param(value_type = Option<String>, format = Date, example = "2015-02-18")]
    pub until: Option<String>,
    /// First event date (`Day`), YYYY-MM-DD, inclusive.
    #[param(value_type = Option<String>, format = Date, example = "2015-02-17")]
    pub day_from: Option<String>,
    /// Last event date (`Day`), YYYY-MM-DD, inclusive.
    #[param(value_type = Option<String>, format = Date, example = "2015-02-18")]
    pub day_to: Option<String>,
    /// Actor 1's CAMEO country codes (3 letters), comma-separated.
    #[param(example = "USA,RUS")]
    pub actor1_country: Option<String>,
    /// Actor 2's CAMEO country codes (3 letters), comma-separated.
    #[param(example = "UKR")]
    pub actor2_country: Option<String>,
    /// Action countries, FIPS 10-4 (2 letters: `UP` is Ukraine, `CH` China), comma-separated.
    #[param(example = "UP")]
    pub action_country: Option<String>,
    /// CAMEO event code prefixes (1 to 4 digits, leading zeros kept), comma-separated: `04`
    /// matches `04`, `040`, `0431`...
    #[param(example = "04")]
    pub event_code: Option<String>,
    /// `EventBaseCode` prefixes, comma-separated.
    #[param(example = "043")]
    pub event_base: Option<String>,
    /// `EventRootCode` values (2 digits, `01`..`20`), comma-separated.
    #[param(example = "14")]
    pub event_root: Option<String>,
    /// Quad classes (1 verbal cooperation, 2 material cooperation, 3 verbal conflict,
    /// 4 material conflict), comma-separated.
    #[param(example = "3,4")]
    pub quad_class: Option<String>,
    /// Smallest `GoldsteinScale` (-10..10).
    #[param(value_type = Option<f64>, example = json!(-10))]
    pub goldstein_min: Option<String>,
    /// Largest `GoldsteinScale`.
    #[param(value_type = Option<f64>, example = json!(0))]
    pub goldstein_max: Option<String>,
    /// Smallest `AvgTone`.
    #[param(value_type = Option<f64>, example = json!(-100))]
    pub tone_min: Option<String>,
    /// Largest `AvgTone`.
    #[param(value_type = Option<f64>, example = json!(-5))]
    pub tone_max: Option<String>,
    /// Bounding box on ActionGeo: `min_lon,min_lat,max_lon,max_lat` (degrees, inclusive).
    #[param(example = "22.1,44.3,40.2,52.4")]
    pub bbox: Option<String>,
    /// Case-insensitive substring of Actor1Name, Actor2Name, the three *Geo_FullName columns
    /// or SOURCEURL.
    #[param(example = "kyiv")]
    pub query: Option<String>,
    /// Feeds, comma-separated: english, translingual, v1 (default: all).
    #[param(example = "english")]
    pub feed: Option<String>,
}

pub fn list(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A comma-separated list whose every item passes `ok`, as `what` says.
pub fn checked_list(
    name: &'static str,
    raw: Option<&str>,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> Result<Vec<String>, ApiError> {
    let items = list(raw);
    match items.iter().find(|v| !ok(v)) {
        Some(bad) => Err(ApiError::invalid(
            name,
            format!("{name} must be {what}, got {bad:?}"),
        )),
        None => Ok(items),
    }
}

/// `feed=`: feed names, comma-separated (empty: every feed).
pub fn feeds(raw: Option<&str>) -> Result<Vec<String>, ApiError> {
    match raw.filter(|f| !f.is_empty()) {
        None => Ok(Vec::new()),
        Some(raw) => {
            let names: Vec<&str> = raw.split(',').collect();
            Ok(parse_feeds(&names)
                .map_err(|e| ApiError::invalid("feed", format!("feed: {e}")))?
                .into_iter()
                .map(|f| f.as_str().to_owned())
                .collect())
        }
    }
}

/// An optional finite number.
fn number(name: &'static str, raw: Option<&str>) -> Result<Option<f64>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(Some)
        .ok_or_else(|| ApiError::invalid(name, format!("{name} must be a number, got {raw:?}")))
}

fn ordered(
    low_name: &'static str,
    low: Option<f64>,
    high: Option<f64>,
    high_name: &str,
) -> Result<(), ApiError> {
    match (low, high) {
        (Some(l), Some(h)) if l > h => Err(ApiError::invalid(
            low_name,
            format!("{low_name} ({l}) is above {high_name} ({h})"),
        )),
        _ => Ok(()),
    }
}

impl FilterQuery {
    /// The filter, or a 400 naming the first bad parameter.
    pub fn to_filter(&self) -> Result<EventFilter, ApiError> {
        let letters =
            |n: usize| move |v: &str| v.len() == n && v.bytes().all(|b| b.is_ascii_uppercase());
        let digits = |max: usize| {
            move |v: &str| (1..=max).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())
        };
        let upper = |raw: &Option<String>| raw.as_deref().map(str::to_ascii_uppercase);
        let day_from = date("day_from", self.day_from.as_deref())?;
        let day_to = date("day_to", self.day_to.as_deref())?;
        if let (Some(f), Some(t)) = (day_from, day_to) {
            if f > t {
                return Err(ApiError::invalid(
                    "day_from",
                    format!("day_from ({f}) is after day_to ({t})"),
                ));
            }
        }
        let quad_class = checked_list(
            "quad_class",
            self.quad_class.as_deref(),
            "1, 2, 3 or 4",
            |v| matches!(v, "1" | "2" | "3" | "4"),
        )?
        .iter()
        .map(|v| v.parse().expect("checked"))
        .collect();
        let goldstein_min = number("goldstein_min", self.goldstein_min.as_deref())?;
        let goldstein_max = number("goldstein_max", self.goldstein_max.as_deref())?;
        ordered(
            "goldstein_min",
            goldstein_min,
            goldstein_max,
            "goldstein_max",
        )?;
        let tone_min = number("tone_min", self.tone_min.as_deref())?;
        let tone_max = number("tone_max", self.tone_max.as_deref())?;
        ordered("tone_min", tone_min, tone_max, "tone_max")?;
        let bbox = match self.bbox.as_deref().filter(|b| !b.is_empty()) {
            None => None,
            Some(raw) => Some(bounding_box(raw)?),
        };
        let feeds = feeds(self.feed.as_deref())?;
        Ok(EventFilter {
            batch: range(self.since.as_deref(), self.until.as_deref())?,
            day_from,
            day_to,
            actor1_country: checked_list(
                "actor1_country",
                upper(&self.actor1_country).as_deref(),
                "CAMEO country codes of 3 letters",
                letters(3),
            )?,
            actor2_country: checked_list(
                "actor2_country",
                upper(&self.actor2_country).as_deref(),
                "CAMEO country codes of 3 letters",
                letters(3),
            )?,
            action_country: checked_list(
                "action_country",
                upper(&self.action_country).as_deref(),
                "FIPS 10-4 country codes of 2 letters",
                letters(2),
            )?,
            event_code: checked_list(
                "event_code",
                self.event_code.as_deref(),
                "CAMEO code prefixes of 1 to 4 digits",
                digits(4),
            )?,
            event_base: checked_list(
                "event_base",
                self.event_base.as_deref(),
                "CAMEO code prefixes of 1 to 3 digits",
                digits(3),
            )?,
            event_root: checked_list(
                "event_root",
                self.event_root.as_deref(),
                "CAMEO root codes of 1 or 2 digits",
                digits(2),
            )?,
            quad_class,
            goldstein_min,
            goldstein_max,
            tone_min,
            tone_max,
            bbox,
            text: self.query.clone().filter(|q| !q.is_empty()),
            feeds,
        })
    }
}

fn bounding_box(raw: &str) -> Result<BoundingBox, ApiError> {
    let bad = |why: &str| {
        ApiError::invalid(
            "bbox",
            format!("bbox must be min_lon,min_lat,max_lon,max_lat ({why}), got {raw:?}"),
        )
    };
    let values: Vec<f64> = raw
        .split(',')
        .map(|v| v.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("four numbers"))?;
    let [min_lon, min_lat, max_lon, max_lat] = values[..] else {
        return Err(bad("four numbers"));
    };
    if ![min_lon, max_lon]
        .iter()
        .all(|v| (-180.0..=180.0).contains(v))
        || ![min_lat, max_lat]
            .iter()
            .all(|v| (-90.0..=90.0).contains(v))
    {
        return Err(bad("longitudes within -180..180, latitudes within -90..90"));
    }
    if min_lon > max_lon || min_lat > max_lat {
        return Err(bad("each minimum at most its maximum"));
    }
    Ok(BoundingBox {
        min_lon,
        min_lat,
        max_lon,
        max_lat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_bad_ones_name_their_parameter() {
        let q = FilterQuery {
            action_country: Some("up, rs".into()),
            event_code: Some("04,190".into()),
            quad_class: Some("3,4".into()),
            bbox: Some("22.1,44.3,40.2,52.4".into()),
            feed: Some("english".into()),
            ..FilterQuery::default()
        };
        let f = q.to_filter().unwrap();
        assert_eq!(f.action_country, vec!["UP", "RS"]);
        assert_eq!(f.event_code, vec!["04", "190"]);
        assert_eq!(f.quad_class, vec![3, 4]);
        assert_eq!(f.bbox.unwrap().max_lat, 52.4);
        assert_eq!(f.feeds, vec!["english"]);
        let err = |q: FilterQuery| q.to_filter().unwrap_err().to_string();
        assert_eq!(
            err(FilterQuery {
                action_country: Some("UKR".into()),
                ..FilterQuery::default()
            }),
            "action_country must be FIPS 10-4 country codes of 2 letters, got \"UKR\""
        );
        assert_eq!(
            err(FilterQuery {
                quad_class: Some("5".into()),
                ..FilterQuery::default()
            }),
            "quad_class must be 1, 2, 3 or 4, got \"5\""
        );
        assert_eq!(
            err(FilterQuery {
                tone_min: Some("1".into()),
                tone_max: Some("-1".into()),
                ..FilterQuery::default()
            }),
            "tone_min (1) is above tone_max (-1)"
        );
        assert_eq!(
            err(FilterQuery {
                bbox: Some("1,2,3".into()),
                ..FilterQuery::default()
            }),
            "bbox must be min_lon,min_lat,max_lon,max_lat (four numbers), got \"1,2,3\""
        );
        assert_eq!(
            err(FilterQuery {
                goldstein_min: Some("NaN".into()),
                ..FilterQuery::default()
            }),
            "goldstein_min must be a number, got \"NaN\""
        );
    }

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
