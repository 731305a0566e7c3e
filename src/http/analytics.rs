//! `/api/v1/analytics`: aggregates over events.

use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::error::{ApiError, ErrorBody, QueryRefusal};
use super::params::{bounded, choice, FilterQuery};
use super::AppState;
use crate::labels;
use crate::query::{
    Bucket, Dimension, Freshness, KeyCount, Measure, SeriesPoint, ToneStats, TopDimension,
};

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(top_event_codes)
        .service(top_countries)
        .service(tone)
        .service(top_any)
        .service(timeseries);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopQuery {
    /// Number of rows, 1..=500 (default 10).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500, example = 10)]
    limit: Option<String>,
}

/// A top-N answer.
#[derive(Serialize, ToSchema)]
pub struct TopResponse {
    /// The column counted: `EventCode` (CAMEO) or `ActionGeo_CountryCode` (FIPS 10-4).
    #[schema(example = "EventCode")]
    pub field: &'static str,
    /// The code system of the keys: `CAMEO event` or `FIPS 10-4`.
    #[schema(example = "CAMEO event")]
    pub code_system: Option<&'static str>,
    /// Most frequent first; ties by key; each with its label where the project's tables know
    /// the code.
    pub rows: Vec<LabelledCount>,
    pub freshness: Freshness,
}

/// Tone statistics with the answer's freshness.
#[derive(Serialize, ToSchema)]
pub struct ToneResponse {
    #[serde(flatten)]
    pub stats: ToneStats,
    pub freshness: Freshness,
}

async fn top(
    state: web::Data<AppState>,
    filters: &FilterQuery,
    query: TopQuery,
    dimension: TopDimension,
) -> Result<HttpResponse, ApiError> {
    let filter = filters.to_filter()?;
    let limit = bounded("limit", query.limit.as_deref(), 10, 1, 500)?;
    let (rows, freshness) = state
        .engine
        .query
        .top_filtered(dimension, filter, limit)
        .await?;
    Ok(HttpResponse::Ok().json(TopResponse {
        field: dimension.column(),
        code_system: dimension.dimension().code_system(),
        rows: with_labels(dimension.dimension(), rows),
        freshness,
    }))
}

/// Puts each key's label beside it.
fn with_labels(dimension: Dimension, rows: Vec<KeyCount>) -> Vec<LabelledCount> {
    rows.into_iter()
        .map(|r| LabelledCount {
            label: labels::label(dimension, &r.key),
            key: r.key,
            n: r.n,
        })
        .collect()
}

/// Most frequent CAMEO event codes (`EventCode`, leading zeros kept).
#[utoipa::path(
    tag = "analytics",
    params(FilterQuery, TopQuery),
    responses(
        (status = 200, description = "Counts (an empty lake answers no rows)", body = TopResponse,
         example = json!({"field": "EventCode", "code_system": "CAMEO event", "rows": [{"key": "010", "label": "Make statement, not specified below", "n": 412}, {"key": "042", "label": "Make a visit", "n": 310}]})),
        (status = 400, description = "A bad parameter", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "limit must be an integer from 1 to 500, got \"0\"", "parameter": "limit"})),
        QueryRefusal,
    )
)]
#[get("/analytics/top-event-codes")]
async fn top_event_codes(
    state: web::Data<AppState>,
    filters: web::Query<FilterQuery>,
    query: web::Query<TopQuery>,
) -> Result<HttpResponse, ApiError> {
    top(state, &filters, query.into_inner(), TopDimension::EventCode).await
}

/// Most frequent action countries (`ActionGeo_CountryCode`, FIPS 10-4; `CH` is China).
#[utoipa::path(
    tag = "analytics",
    params(FilterQuery, TopQuery),
    responses(
        (status = 200, description = "Counts (an empty lake answers no rows)", body = TopResponse,
         example = json!({"field": "ActionGeo_CountryCode", "code_system": "FIPS 10-4", "rows": [{"key": "US", "label": "United States", "n": 2210}, {"key": "UK", "label": "United Kingdom", "n": 301}]})),
        (status = 400, description = "A bad parameter", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "until must be a date as YYYY-MM-DD, got \"2015\"", "parameter": "until"})),
        QueryRefusal,
    )
)]
#[get("/analytics/top-countries")]
async fn top_countries(
    state: web::Data<AppState>,
    filters: web::Query<FilterQuery>,
    query: web::Query<TopQuery>,
) -> Result<HttpResponse, ApiError> {
    top(
        state,
        &filters,
        query.into_inner(),
        TopDimension::ActionCountry,
    )
    .await
}

/// Count, mean, minimum and maximum of `AvgTone`.
#[utoipa::path(
    tag = "analytics",
    params(FilterQuery),
    responses(
        (status = 200, description = "Tone statistics; available is false when no event matched", body = ToneResponse,
         example = json!({"available": true, "n": 8709, "avg_tone": -2.31, "min_tone": -21.4, "max_tone": 14.9})),
        (status = 400, description = "A bad parameter", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "since (2015-02-19) is after until (2015-02-18)", "parameter": "since"})),
        QueryRefusal,
    )
)]
#[get("/analytics/tone")]
async fn tone(
    state: web::Data<AppState>,
    filters: web::Query<FilterQuery>,
) -> Result<HttpResponse, ApiError> {
    let (stats, freshness) = state.engine.query.tone(filters.to_filter()?).await?;
    Ok(HttpResponse::Ok().json(ToneResponse { stats, freshness }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopAnyQuery {
    /// What to rank: event_code, event_base, event_root, quad_class, action_country (FIPS
    /// 10-4), actor1_country, actor2_country (CAMEO), source_domain (SOURCEURL's host).
    #[param(example = "event_root")]
    dimension: Option<String>,
    /// What to count: events (default), mentions, articles or sources (sums of NumMentions,
    /// NumArticles, NumSources).
    #[param(example = "events")]
    count: Option<String>,
    /// Number of rows, 1..=500 (default 10).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500, example = 10)]
    limit: Option<String>,
}

/// A ranked row with its label.
#[derive(Serialize, ToSchema)]
pub struct LabelledCount {
    #[schema(example = "04")]
    pub key: String,
    /// The code's name, where the project's tables know it.
    #[schema(example = "Consult")]
    pub label: Option<&'static str>,
    #[schema(example = 1234)]
    pub n: i64,
}

/// A top-N over any dimension.
#[derive(Serialize, ToSchema)]
pub struct TopAnyResponse {
    #[schema(example = "event_root")]
    pub dimension: &'static str,
    /// The column ranked.
    #[schema(example = "EventRootCode")]
    pub field: &'static str,
    /// The code system of the keys (`FIPS 10-4`, `CAMEO country`, `CAMEO event`, `GDELT quad
    /// class`); null for source domains.
    #[schema(example = "CAMEO event")]
    pub code_system: Option<&'static str>,
    /// What `n` counts.
    #[schema(example = "events")]
    pub count: &'static str,
    /// Largest first; ties by key.
    pub rows: Vec<LabelledCount>,
    pub freshness: Freshness,
}

/// The largest values of any dimension, by events or by mentions, articles or sources, with
/// every event filter.
#[utoipa::path(
    tag = "analytics",
    params(TopAnyQuery, FilterQuery),
    responses(
        (status = 200, description = "Ranked keys with labels", body = TopAnyResponse),
        (status = 400, description = "A bad parameter", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "dimension must be one of event_code, event_base, event_root, quad_class, action_country, actor1_country, actor2_country, source_domain, got \"color\"", "parameter": "dimension"})),
        QueryRefusal,
    )
)]
#[get("/analytics/top")]
async fn top_any(
    state: web::Data<AppState>,
    query: web::Query<TopAnyQuery>,
    filters: web::Query<FilterQuery>,
) -> Result<HttpResponse, ApiError> {
    let (dimension_name, dimension) = named(
        "dimension",
        query.dimension.as_deref(),
        &Dimension::NAMES,
        "event_code",
    )?;
    let (count_name, measure) = named("count", query.count.as_deref(), &Measure::NAMES, "events")?;
    let limit = bounded("limit", query.limit.as_deref(), 10, 1, 500)?;
    let (rows, freshness) = state
        .engine
        .query
        .top_by(dimension, measure, filters.to_filter()?, limit)
        .await?;
    Ok(HttpResponse::Ok().json(TopAnyResponse {
        dimension: dimension_name,
        field: dimension.field(),
        code_system: dimension.code_system(),
        count: count_name,
        rows: with_labels(dimension, rows),
        freshness,
    }))
}

/// A choice by name, returning the name too.
fn named<T: Copy>(
    param: &'static str,
    raw: Option<&str>,
    names: &[(&'static str, T)],
    default: &'static str,
) -> Result<(&'static str, T), ApiError> {
    let default_value = names
        .iter()
        .find(|(n, _)| *n == default)
        .map(|(_, v)| *v)
        .expect("the default is a name");
    let value = choice(param, raw, names, default_value)?;
    let name = raw
        .filter(|r| !r.is_empty())
        .and_then(|r| names.iter().find(|(n, _)| *n == r).map(|(n, _)| *n))
        .unwrap_or(default);
    Ok((name, value))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// Bucket width over batch time (DATEADDED, UTC): 15min, hour, day (default), week (from
    /// Monday) or month.
    #[param(example = "hour")]
    bucket: Option<String>,
    /// What `n` counts: events (default), mentions, articles or sources.
    #[param(example = "events")]
    count: Option<String>,
}

/// A time series.
#[derive(Serialize, ToSchema)]
pub struct SeriesResponse {
    #[schema(example = "hour")]
    pub bucket: &'static str,
    #[schema(example = "events")]
    pub count: &'static str,
    /// Oldest first; buckets without events are absent.
    pub rows: Vec<SeriesPoint>,
    pub freshness: Freshness,
}

/// Volume and mean tone per time bucket, with every event filter.
#[utoipa::path(
    tag = "analytics",
    params(SeriesQuery, FilterQuery),
    responses(
        (status = 200, description = "The series", body = SeriesResponse,
         example = json!({"bucket": "hour", "count": "events", "rows": [{"bucket": "2015-02-18T23:00:00Z", "n": 8709, "events": 8709, "avg_tone": -2.28}]})),
        (status = 400, description = "A bad parameter", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "bucket must be one of 15min, hour, day, week, month, got \"year\"", "parameter": "bucket"})),
        QueryRefusal,
    )
)]
#[get("/analytics/timeseries")]
async fn timeseries(
    state: web::Data<AppState>,
    query: web::Query<SeriesQuery>,
    filters: web::Query<FilterQuery>,
) -> Result<HttpResponse, ApiError> {
    let (bucket_name, bucket) = named("bucket", query.bucket.as_deref(), &Bucket::NAMES, "day")?;
    let (count_name, measure) = named("count", query.count.as_deref(), &Measure::NAMES, "events")?;
    let (rows, freshness) = state
        .engine
        .query
        .series(bucket, measure, filters.to_filter()?)
        .await?;
    Ok(HttpResponse::Ok().json(SeriesResponse {
        bucket: bucket_name,
        count: count_name,
        rows,
        freshness,
    }))
}
