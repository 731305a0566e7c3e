//! `/api/v1/ingest`: start ingestion jobs and follow them.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::error::{ApiError, ErrorBody};
use super::params::bounded;
use super::AppState;
use crate::catalog::JobRecord;
use crate::jobs::JobSpec;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(trigger).service(job);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TriggerQuery {
    /// How many of the newest event batches to ingest, 1..=1000 (default 1). Batches already
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

/// Queue ingestion of the newest event batches.
#[utoipa::path(
    tag = "ingest",
    params(TriggerQuery),
    responses(
        (status = 202, description = "Job queued", body = TriggerResponse),
        (status = 400, description = "Bad n_batches", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "n_batches must be an integer from 1 to 1000, got \"0\"", "parameter": "n_batches"})),
        (status = 503, description = "Queue full or shutting down; see Retry-After", body = ErrorBody,
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
