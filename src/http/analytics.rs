//! `/api/v1/analytics`: aggregates over events.

use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::error::{ApiError, ErrorBody};
use super::params::{bounded, range};
use super::AppState;
use crate::query::{KeyCount, ToneStats, TopDimension};

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(top_event_codes)
        .service(top_countries)
        .service(tone);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopQuery {
    /// First batch date to include, YYYY-MM-DD (UTC, inclusive).
    #[param(value_type = Option<String>, format = Date, example = "2015-02-18")]
    since: Option<String>,
    /// Last batch date to include, YYYY-MM-DD (UTC, inclusive).
    #[param(value_type = Option<String>, format = Date, example = "2015-02-18")]
    until: Option<String>,
    /// Number of rows, 1..=500 (default 10).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500, example = 10)]
    limit: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ToneQuery {
    /// First batch date to include, YYYY-MM-DD (UTC, inclusive).
    #[param(value_type = Option<String>, format = Date, example = "2015-02-18")]
    since: Option<String>,
    /// Last batch date to include, YYYY-MM-DD (UTC, inclusive).
    #[param(value_type = Option<String>, format = Date, example = "2015-02-18")]
    until: Option<String>,
}

/// A top-N answer.
#[derive(Serialize, ToSchema)]
pub struct TopResponse {
    /// The column counted: `EventCode` (CAMEO) or `ActionGeo_CountryCode` (FIPS 10-4).
    #[schema(example = "EventCode")]
    pub field: &'static str,
    /// Most frequent first; ties by key.
    pub rows: Vec<KeyCount>,
}

async fn top(
    state: web::Data<AppState>,
    query: TopQuery,
    dimension: TopDimension,
) -> Result<HttpResponse, ApiError> {
    let dates = range(query.since.as_deref(), query.until.as_deref())?;
    let limit = bounded("limit", query.limit.as_deref(), 10, 1, 500)?;
    let rows = state.engine.query.top(dimension, dates, limit).await?;
    Ok(HttpResponse::Ok().json(TopResponse {
        field: dimension.column(),
        rows,
    }))
}

/// Most frequent CAMEO event codes (`EventCode`, leading zeros kept).
#[utoipa::path(
    tag = "analytics",
    params(TopQuery),
    responses(
        (status = 200, description = "Counts (an empty lake answers no rows)", body = TopResponse,
         example = json!({"field": "EventCode", "rows": [{"key": "010", "n": 412}, {"key": "042", "n": 310}]})),
        (status = 400, description = "A bad parameter", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "limit must be an integer from 1 to 500, got \"0\"", "parameter": "limit"})),
        (status = 500, description = "Query failure", body = ErrorBody),
    )
)]
#[get("/analytics/top-event-codes")]
async fn top_event_codes(
    state: web::Data<AppState>,
    query: web::Query<TopQuery>,
) -> Result<HttpResponse, ApiError> {
    top(state, query.into_inner(), TopDimension::EventCode).await
}

/// Most frequent action countries (`ActionGeo_CountryCode`, FIPS 10-4; `CH` is China).
#[utoipa::path(
    tag = "analytics",
    params(TopQuery),
    responses(
        (status = 200, description = "Counts (an empty lake answers no rows)", body = TopResponse,
         example = json!({"field": "ActionGeo_CountryCode", "rows": [{"key": "US", "n": 2210}, {"key": "UK", "n": 301}]})),
        (status = 400, description = "A bad parameter", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "until must be a date as YYYY-MM-DD, got \"2015\"", "parameter": "until"})),
        (status = 500, description = "Query failure", body = ErrorBody),
    )
)]
#[get("/analytics/top-countries")]
async fn top_countries(
    state: web::Data<AppState>,
    query: web::Query<TopQuery>,
) -> Result<HttpResponse, ApiError> {
    top(state, query.into_inner(), TopDimension::ActionCountry).await
}

/// Count, mean, minimum and maximum of `AvgTone`.
#[utoipa::path(
    tag = "analytics",
    params(ToneQuery),
    responses(
        (status = 200, description = "Tone statistics; available is false when no event matched", body = ToneStats,
         example = json!({"available": true, "n": 8709, "avg_tone": -2.31, "min_tone": -21.4, "max_tone": 14.9})),
        (status = 400, description = "A bad parameter", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "since (2015-02-19) is after until (2015-02-18)", "parameter": "since"})),
        (status = 500, description = "Query failure", body = ErrorBody),
    )
)]
#[get("/analytics/tone")]
async fn tone(
    state: web::Data<AppState>,
    query: web::Query<ToneQuery>,
) -> Result<HttpResponse, ApiError> {
    let dates = range(query.since.as_deref(), query.until.as_deref())?;
    let stats = state.engine.query.tone(dates).await?;
    Ok(HttpResponse::Ok().json(stats))
}
