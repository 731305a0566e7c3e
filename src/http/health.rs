//! `/health` and `/metrics`.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::catalog::CatalogSummary;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health).service(metrics);
}

/// Liveness and what the lake holds.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the catalog answers.
    #[schema(example = "ok")]
    pub status: &'static str,
    #[schema(example = "0.1.0")]
    pub version: &'static str,
    pub scheduler_enabled: bool,
    pub lake: CatalogSummary,
}

/// Health of the service and a summary of the lake.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 500, description = "The catalog does not answer", body = ErrorBody),
    )
)]
#[get("/health")]
async fn health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let catalog = state.engine.catalog.clone();
    let lake = web::block(move || catalog.summary())
        .await
        .map_err(|e| ApiError::Task(e.to_string()))??;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        scheduler_enabled: state.engine.config.ingest.scheduler_enabled,
        lake,
    }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Metrics", content_type = "text/plain; version=0.0.4", body = String))
)]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.engine.metrics.render())
}
