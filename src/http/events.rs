//! `/api/v1/events`: event search.

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::error::{ApiError, ErrorBody, QueryRefusal};
use super::params::{bounded, choice, range, FilterQuery};
use super::AppState;
use crate::query::{event_columns, EventsPage, EventsRequest, ExportFormat, SearchResult, Sort};

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(search).service(list);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Rows per page, 1..=1000 (default 100). For the streamed formats: the most rows to
    /// export (default: every match).
    #[param(value_type = Option<u32>, minimum = 1, example = 100)]
    limit: Option<String>,
    /// `json` (default, one page), or a streamed export of every match: `ndjson`, `csv`,
    /// `parquet`, `arrow` (IPC stream). `Accept: application/x-ndjson`, `text/csv`,
    /// `application/vnd.apache.parquet` or `application/vnd.apache.arrow.stream` does the same.
    #[param(example = "json")]
    format: Option<String>,
    /// `next_cursor` of the previous page; the other parameters must stay the same.
    cursor: Option<String>,
    /// Order: `-dateadded` (newest batch first, the default), `dateadded`, `-day` (latest
    /// event date first) or `day`; ties by feed and GlobalEventID.
    #[param(example = "-dateadded")]
    sort: Option<String>,
    /// Columns to return, comma-separated, from the events schema and `feed` (default: all).
    #[param(example = "GlobalEventID,Day,EventCode,ActionGeo_CountryCode,AvgTone,SOURCEURL")]
    fields: Option<String>,
    /// `true` to also count every match (one more scan).
    #[param(value_type = Option<bool>, example = false)]
    total: Option<String>,
}

/// Events matching every filter given, a page at a time.
#[utoipa::path(
    tag = "events",
    params(FilterQuery, PageQuery),
    responses(
        (status = 200, description = "A page of events (follow next_cursor for the next), or every match streamed as NDJSON, CSV, Parquet or Arrow IPC",
         content(
             (EventsPage = "application/json"),
             (String = "application/x-ndjson"),
             (String = "text/csv"),
             (Vec<u8> = "application/vnd.apache.parquet"),
             (Vec<u8> = "application/vnd.apache.arrow.stream"),
         ),
         headers(
             ("X-Newest-Batch" = String, description = "Exports: the newest batch stored, ISO 8601 UTC (JSON pages carry `freshness` instead)"),
             ("X-Newest-Batch-Age-Seconds" = i64, description = "Exports: that batch's age in seconds"),
             ("X-Partitions-Read" = u32, description = "Exports: batch-date partitions read"),
             ("X-Files-Read" = u32, description = "Exports: Parquet files read"),
         )),
        (status = 400, description = "A bad parameter, or a cursor from other filters", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "action_country must be FIPS 10-4 country codes of 2 letters, got \"UKR\"", "parameter": "action_country"})),
        QueryRefusal,
    )
)]
#[get("/events")]
async fn list(
    state: web::Data<AppState>,
    filters: web::Query<FilterQuery>,
    page: web::Query<PageQuery>,
    http: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let filter = filters.to_filter()?;
    let format = export_format(page.format.as_deref(), &http)?;
    let (limit, export_limit) = match format {
        None => (bounded("limit", page.limit.as_deref(), 100, 1, 1000)?, 0),
        Some(_) => (
            0,
            bounded("limit", page.limit.as_deref(), 0, 1, usize::MAX >> 1)?,
        ),
    };
    let sort = choice(
        "sort",
        page.sort.as_deref(),
        &Sort::NAMES,
        Sort::DateAddedDesc,
    )?;
    let total = choice(
        "total",
        page.total.as_deref(),
        &[("true", true), ("false", false)],
        false,
    )?;
    let mut fields: Vec<&'static str> = Vec::new();
    for name in page
        .fields
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let column = event_columns()
            .map(|(c, _)| c)
            .find(|c| *c == name)
            .ok_or_else(|| {
                ApiError::invalid(
                    "fields",
                    format!("fields: {name:?} is not a column of the events table (names are case-sensitive, as GDELT spells them)"),
                )
            })?;
        if !fields.contains(&column) {
            fields.push(column);
        }
    }
    let request = EventsRequest {
        filter,
        sort,
        limit,
        cursor: page.cursor.clone().filter(|c| !c.is_empty()),
        fields,
        total,
        export_limit,
    };
    let Some(format) = format else {
        let page = state.engine.query.events(request).await?;
        return Ok(HttpResponse::Ok().json(page));
    };
    let (stream, freshness) = state.engine.query.export(request, format).await?;
    let body = futures_util::stream::unfold(stream, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let mut response = HttpResponse::Ok();
    response.content_type(format.content_type());
    if let Some(newest) = &freshness.newest_batch {
        response.insert_header(("X-Newest-Batch", newest.as_str()));
    }
    if let Some(age) = freshness.age_seconds {
        response.insert_header(("X-Newest-Batch-Age-Seconds", age.to_string()));
    }
    response.insert_header(("X-Files-Read", freshness.files_read.to_string()));
    response.insert_header(("X-Partitions-Read", freshness.partitions_read.to_string()));
    Ok(response.streaming(body))
}

/// The export format asked for by `format=` or, without it, by `Accept`; `None` for JSON.
fn export_format(raw: Option<&str>, http: &HttpRequest) -> Result<Option<ExportFormat>, ApiError> {
    const NAMES: [(&str, Option<ExportFormat>); 5] = [
        ("json", None),
        ("ndjson", Some(ExportFormat::Ndjson)),
        ("csv", Some(ExportFormat::Csv)),
        ("parquet", Some(ExportFormat::Parquet)),
        ("arrow", Some(ExportFormat::Arrow)),
    ];
    if raw.is_some_and(|r| !r.is_empty()) {
        return choice("format", raw, &NAMES, None);
    }
    let accept = http
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    for (media, format) in [
        ("application/x-ndjson", ExportFormat::Ndjson),
        ("application/jsonl", ExportFormat::Ndjson),
        ("text/csv", ExportFormat::Csv),
        ("application/vnd.apache.parquet", ExportFormat::Parquet),
        ("application/x-parquet", ExportFormat::Parquet),
        ("application/vnd.apache.arrow.stream", ExportFormat::Arrow),
    ] {
        if accept.contains(media) {
            return Ok(Some(format));
        }
    }
    Ok(None)
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
        QueryRefusal,
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
