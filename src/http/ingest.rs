//! `/api/v1/ingest`: start ingestion jobs and follow them.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::error::{ApiError, ErrorBody};
use super::params::{bounded, date, range};
use super::AppState;
use crate::catalog::JobRecord;
use crate::coverage::{CoverageDay, CoverageError};
use crate::ingest::listing::{parse_feeds, parse_tables, Feed, FileKind};
use crate::jobs::{check_backfill_range, BackfillRangeError, JobSpec};

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(trigger)
        .service(backfill)
        .service(job)
        .service(coverage);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TriggerQuery {
    /// How many of the newest batches (15-minute timestamps) to ingest, 1..=1000 (default 1),
    /// every file of the configured tables and feeds in them. Files already
    /// stored are skipped.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000, example = 4)]
    n_batches: Option<String>,
}

/// A queued job.
#[derive(Serialize, ToSchema)]
pub struct TriggerResponse {
    #[schema(example = 1)]
    pub job_id: i64,
    /// Number of batches requested.
    #[schema(example = 4)]
    pub queued: usize,
    /// Where to follow the job.
    #[schema(example = "/api/v1/ingest/jobs/1")]
    pub status_url: String,
}

/// Queue ingestion of the newest batches of the configured tables and feeds.
#[utoipa::path(
    tag = "ingest",
    params(TriggerQuery),
    responses(
        (status = 202, description = "Job queued", body = TriggerResponse),
        (status = 400, description = "Bad n_batches", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "n_batches must be an integer from 1 to 1000, got \"0\"", "parameter": "n_batches"})),
        (status = 503, description = "Queue full or shutting down; see Retry-After", body = ErrorBody,
         headers(("Retry-After" = u32, description = "Seconds to wait before retrying")),
         example = json!({"code": "queue_full", "message": "the ingestion queue is full (64 jobs waiting); retry later"})),
    )
)]
#[post("/ingest/trigger")]
async fn trigger(
    state: web::Data<AppState>,
    query: web::Query<TriggerQuery>,
) -> Result<HttpResponse, ApiError> {
    let n_batches = bounded("n_batches", query.n_batches.as_deref(), 1, 1, 1000)?;
    let handle = state
        .engine
        .pool
        .submit(JobSpec::Latest { n_batches })
        .await?;
    Ok(HttpResponse::Accepted().json(TriggerResponse {
        job_id: handle.id,
        queued: n_batches,
        status_url: format!("/api/v1/ingest/jobs/{}", handle.id),
    }))
}

/// A job's state, progress and per-file results.
#[utoipa::path(
    tag = "ingest",
    params(("id" = i64, Path, description = "Job id from the trigger answer", example = 1)),
    responses(
        (status = 200, description = "The job", body = JobRecord),
        (status = 400, description = "The id is not an integer", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "id must be an integer, got \"abc\"", "parameter": "id"})),
        (status = 404, description = "No such job", body = ErrorBody,
         example = json!({"code": "not_found", "message": "no job with id 42"})),
    )
)]
#[get("/ingest/jobs/{id}")]
async fn job(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let raw = id.into_inner();
    let id: i64 = raw
        .parse()
        .map_err(|_| ApiError::invalid("id", format!("id must be an integer, got {raw:?}")))?;
    let catalog = state.engine.catalog.clone();
    let record = web::block(move || catalog.job(id))
        .await
        .map_err(|e| ApiError::Task(e.to_string()))??;
    match record {
        Some(record) => Ok(HttpResponse::Ok().json(record)),
        None => Err(ApiError::NotFound(format!("no job with id {id}"))),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BackfillQuery {
    /// First batch date (UTC), YYYY-MM-DD, inclusive.
    #[param(value_type = String, format = Date, example = "2015-02-19")]
    from: Option<String>,
    /// Last batch date (UTC), YYYY-MM-DD, inclusive.
    #[param(value_type = String, format = Date, example = "2015-02-20")]
    to: Option<String>,
    /// Comma-separated tables: events, mentions, gkg (default: `ingest.tables`).
    #[param(example = "events,mentions")]
    tables: Option<String>,
    /// Comma-separated feeds: english, translingual, v1 (default: `ingest.feeds`).
    #[param(example = "english,translingual")]
    feeds: Option<String>,
}

/// Queue a backfill: every file of the tables whose batch date lies in `from..=to`.
/// Resumable: files already stored are skipped, failed ones retried.
#[utoipa::path(
    tag = "ingest",
    params(BackfillQuery),
    responses(
        (status = 202, description = "Job queued", body = TriggerResponse),
        (status = 400, description = "A bad parameter", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "tables: \"gdelt\" is not a table; accepted: events, mentions, gkg", "parameter": "tables"})),
        (status = 503, description = "Queue full or shutting down; see Retry-After", body = ErrorBody,
         headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
#[post("/ingest/backfill")]
async fn backfill(
    state: web::Data<AppState>,
    query: web::Query<BackfillQuery>,
) -> Result<HttpResponse, ApiError> {
    let from = date("from", query.from.as_deref())?
        .ok_or_else(|| ApiError::invalid("from", "from is required, as YYYY-MM-DD"))?;
    let to = date("to", query.to.as_deref())?
        .ok_or_else(|| ApiError::invalid("to", "to is required, as YYYY-MM-DD"))?;
    let kinds = match query.tables.as_deref() {
        Some(list) => tables(list)?,
        None => state.engine.kinds.clone(),
    };
    let feeds = match query.feeds.as_deref() {
        Some(list) => feeds(list)?,
        None => state.engine.feeds.clone(),
    };
    check_backfill_range(from, to, &feeds, &kinds, chrono::Utc::now().date_naive()).map_err(
        |e| match e {
            BackfillRangeError::FromBeforeFeed { .. } | BackfillRangeError::Reversed { .. } => {
                ApiError::invalid("from", e.to_string())
            }
            BackfillRangeError::ToInFuture { .. } => ApiError::invalid("to", e.to_string()),
            BackfillRangeError::NoFiles => ApiError::invalid("tables", e.to_string()),
        },
    )?;
    let days = (to - from).num_days() + 1;
    let handle = state
        .engine
        .pool
        .submit(JobSpec::Backfill {
            from,
            to,
            kinds,
            feeds,
        })
        .await?;
    Ok(HttpResponse::Accepted().json(TriggerResponse {
        job_id: handle.id,
        queued: days as usize,
        status_url: format!("/api/v1/ingest/jobs/{}", handle.id),
    }))
}

fn tables(list: &str) -> Result<Vec<FileKind>, ApiError> {
    let names: Vec<&str> = list.split(',').collect();
    parse_tables(&names).map_err(|e| ApiError::invalid("tables", format!("tables: {e}")))
}

fn feeds(list: &str) -> Result<Vec<Feed>, ApiError> {
    let names: Vec<&str> = list.split(',').collect();
    parse_feeds(&names).map_err(|e| ApiError::invalid("feeds", format!("feeds: {e}")))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CoverageQuery {
    /// First day, YYYY-MM-DD (default: 6 days before `until`).
    #[param(value_type = Option<String>, format = Date, example = "2015-02-18")]
    since: Option<String>,
    /// Last day, YYYY-MM-DD (default: today, UTC).
    #[param(value_type = Option<String>, format = Date, example = "2015-02-20")]
    until: Option<String>,
    /// events (default), mentions or gkg.
    #[param(example = "events")]
    table: Option<String>,
    /// english (default) or translingual.
    #[param(example = "english")]
    feed: Option<String>,
}

/// A coverage report.
#[derive(Serialize, ToSchema)]
pub struct CoverageResponse {
    #[schema(example = "events")]
    pub table: &'static str,
    #[schema(example = "english")]
    pub feed: &'static str,
    /// One entry per day, oldest first.
    pub days: Vec<CoverageDay>,
}

/// Completeness per day: expected, ingested, failed, pending, missing upstream, rows.
#[utoipa::path(
    tag = "ingest",
    params(CoverageQuery),
    responses(
        (status = 200, description = "The report", body = CoverageResponse),
        (status = 400, description = "A bad parameter", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "table must be one of events, mentions, gkg, got \"x\"", "parameter": "table"})),
    )
)]
#[get("/ingest/coverage")]
async fn coverage(
    state: web::Data<AppState>,
    query: web::Query<CoverageQuery>,
) -> Result<HttpResponse, ApiError> {
    let dates = range(query.since.as_deref(), query.until.as_deref())?;
    let until = dates
        .until
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let since = dates.since.unwrap_or(until - chrono::Duration::days(6));
    let name = query.table.as_deref().unwrap_or("events");
    let kind = FileKind::for_table(name).ok_or_else(|| {
        ApiError::invalid(
            "table",
            format!("table must be one of events, mentions, gkg, got {name:?}"),
        )
    })?;
    let feed_name = query.feed.as_deref().unwrap_or("english");
    let feed = Feed::parse(feed_name).ok_or_else(|| {
        ApiError::invalid(
            "feed",
            format!("feed must be english, translingual or v1, got {feed_name:?}"),
        )
    })?;
    let catalog = state.engine.catalog.clone();
    let days = web::block(move || crate::coverage::report(&catalog, feed, kind, since, until))
        .await
        .map_err(|e| ApiError::Task(e.to_string()))?
        .map_err(|e| match e {
            CoverageError::TooLong { .. } | CoverageError::Reversed { .. } => {
                ApiError::invalid("since", e.to_string())
            }
            CoverageError::NotInFeed { .. } => ApiError::invalid("table", e.to_string()),
            CoverageError::Future { .. } => ApiError::invalid("until", e.to_string()),
            CoverageError::Catalog(e) => ApiError::Catalog(e),
        })?;
    Ok(HttpResponse::Ok().json(CoverageResponse {
        table: kind.layout().name,
        feed: feed.as_str(),
        days,
    }))
}
