//! `/api/v1/lake`: lake maintenance on demand.

use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::error::{ApiError, ErrorBody};
use super::params::range;
use super::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(compact);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompactQuery {
    /// First batch date to compact, YYYY-MM-DD (UTC, inclusive; default: the oldest).
    #[param(value_type = Option<String>, format = Date, example = "2015-02-18")]
    since: Option<String>,
    /// Last batch date to compact, YYYY-MM-DD (UTC, inclusive; default: yesterday). Today's
    /// partition is never compacted: batches still arrive there.
    #[param(value_type = Option<String>, format = Date, example = "2015-02-18")]
    until: Option<String>,
}

/// A queued maintenance job.
#[derive(Serialize, ToSchema)]
pub struct MaintenanceQueued {
    #[schema(example = 7)]
    pub job_id: i64,
    /// Where to follow the job; its `result` holds the report when it has finished.
    #[schema(example = "/api/v1/ingest/jobs/7")]
    pub status_url: String,
}

/// Run lake maintenance now: retention (when `lake.retention_days` is set), then compaction of
/// every complete day in the range whose batch files are still separate, into one Parquet file
/// per day, table and feed. Queries keep answering meanwhile, over the old files or the new
/// one.
#[utoipa::path(
    tag = "lake",
    params(CompactQuery),
    responses(
        (status = 202, description = "Job queued", body = MaintenanceQueued),
        (status = 400, description = "A bad parameter", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "since must be a date as YYYY-MM-DD, got \"2015-2-18\"", "parameter": "since"})),
        (status = 500, description = "The job could not be recorded", body = ErrorBody),
    )
)]
#[post("/lake/compact")]
async fn compact(
    state: web::Data<AppState>,
    query: web::Query<CompactQuery>,
) -> Result<HttpResponse, ApiError> {
    let dates = range(query.since.as_deref(), query.until.as_deref())?;
    let maintenance = state.engine.maintenance.clone();
    let job_id = web::block(move || maintenance.submit(dates))
        .await
        .map_err(|e| ApiError::Task(e.to_string()))??;
    Ok(HttpResponse::Accepted().json(MaintenanceQueued {
        job_id,
        status_url: format!("/api/v1/ingest/jobs/{job_id}"),
    }))
}
