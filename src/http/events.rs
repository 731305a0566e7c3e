//! `/api/v1/events`: event search.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::error::{ApiError, ErrorBody};
use super::params::{bounded, range};
use super::AppState;
use crate::query::SearchResult;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(search);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Case-insensitive substring matched against Actor1Name, Actor2Name, the three
    /// *Geo_FullName columns and SOURCEURL. Empty or absent matches every event.
    #[param(example = "ukraine")]
    query: Option<String>,
    /// First batch date to include, YYYY-MM-DD (UTC, inclusive).
    #[param(value_type = Option<String>, format = Date, example = "2015-02-18")]
    since: Option<String>,
    /// Last batch date to include, YYYY-MM-DD (UTC, inclusive).
    #[param(value_type = Option<String>, format = Date, example = "2015-02-18")]
    until: Option<String>,
    /// Maximum rows, 1..=500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500, example = 20)]
    limit: Option<String>,
}

/// Search events, newest batch first.
#[utoipa::path(
    tag = "events",
    params(SearchQuery),
    responses(
        (status = 200, description = "Matching events (an empty lake answers an empty list)", body = SearchResult),
        (status = 400, description = "A bad parameter", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "since must be a date as YYYY-MM-DD, got \"yesterday\"", "parameter": "since"})),
        (status = 500, description = "Query failure", body = ErrorBody),
    )
)]
#[get("/events/search")]
async fn search(
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let dates = range(query.since.as_deref(), query.until.as_deref())?;
    let limit = bounded("limit", query.limit.as_deref(), 50, 1, 500)?;
    let text = query.query.filter(|q| !q.is_empty());
    let result = state.engine.query.search(text, dates, limit).await?;
    Ok(HttpResponse::Ok().json(result))
}
