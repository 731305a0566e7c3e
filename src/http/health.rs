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

/// Liveness, freshness and what the lake holds.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when a configured table has no batch newer than
    /// `ingest.stale_after_minutes` (the service still answers).
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Why the status is `degraded`.
    pub reasons: Vec<String>,
    #[schema(example = "0.1.0")]
    pub version: &'static str,
    pub scheduler_enabled: bool,
    /// Freshness of each configured table.
    pub tables: Vec<TableFreshness>,
    pub lake: CatalogSummary,
}

/// The newest stored batch of a table.
#[derive(Serialize, ToSchema)]
pub struct TableFreshness {
    #[schema(example = "events")]
    pub table: &'static str,
    /// `YYYYMMDDHHMMSS`, UTC.
    #[schema(example = "20150218234500")]
    pub newest_batch: Option<String>,
    pub age_seconds: Option<i64>,
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
    let kinds = state.engine.kinds.clone();
    let (lake, newest) = web::block(move || -> Result<_, crate::catalog::CatalogError> {
        let newest = kinds
            .iter()
            .map(|k| Ok((k.layout().name, catalog.newest_batch(k.as_str())?)))
            .collect::<Result<Vec<_>, crate::catalog::CatalogError>>()?;
        Ok((catalog.summary()?, newest))
    })
    .await
    .map_err(|e| ApiError::Task(e.to_string()))??;
    let now = chrono::Utc::now().naive_utc();
    let stale_after = state.engine.config.ingest.stale_after_minutes;
    let mut reasons = Vec::new();
    let tables = newest
        .into_iter()
        .map(|(table, newest)| {
            let age = newest.map(|ts| (now - ts).num_seconds());
            match age {
                None => reasons.push(format!("{table}: no batch stored yet")),
                Some(age) if age > stale_after as i64 * 60 => reasons.push(format!(
                    "{table}: newest batch is {} minutes old (ingest.stale_after_minutes = {stale_after})",
                    age / 60
                )),
                Some(_) => {}
            }
            TableFreshness {
                table,
                newest_batch: newest.map(|ts| ts.format("%Y%m%d%H%M%S").to_string()),
                age_seconds: age,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(Health {
        status: if reasons.is_empty() { "ok" } else { "degraded" },
        reasons,
        version: env!("CARGO_PKG_VERSION"),
        scheduler_enabled: state.engine.config.ingest.scheduler_enabled,
        tables,
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
