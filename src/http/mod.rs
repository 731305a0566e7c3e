//! The HTTP layer: adapts the engine to actix-web. One module per resource; routes and the
//! OpenAPI document come from the same declarations (utoipa-actix-web).

pub mod analytics;
pub mod error;
pub mod events;
pub mod health;
pub mod ingest;
pub mod lake;
mod params;
pub mod tables;

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpResponse};
use slog::{info, Logger};
use utoipa::OpenApi;
use utoipa_actix_web::{scope, AppExt};
use utoipa_swagger_ui::SwaggerUi;

use crate::Engine;
use error::{ApiError, ErrorBody};

/// What every handler can reach.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub log: Logger,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gdelt-lake",
        description = "A local, typed, partitioned Parquet lake of the GDELT feed (events, \
                       mentions, GKG), kept up to date and queried over HTTP.",
        license(name = "MIT")
    ),
    tags(
        (name = "ingest", description = "Ingestion jobs"),
        (name = "lake", description = "Lake maintenance: compaction and retention"),
        (name = "events", description = "Event search"),
        (name = "mentions", description = "Mentions of events in articles"),
        (name = "gkg", description = "Global Knowledge Graph records"),
        (name = "analytics", description = "Aggregates over events"),
        (name = "operations", description = "Health and metrics")
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// Builds the application: routes, OpenAPI document, Swagger UI, metrics and request logs.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let query_errors = web::QueryConfig::default().error_handler(|err, _| {
        ApiError::invalid("query", format!("invalid query string: {err}")).into()
    });
    let path_errors = web::PathConfig::default().error_handler(|err, _| {
        ApiError::invalid("path", format!("invalid path parameter: {err}")).into()
    });
    let (app, api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .app_data(state)
        .app_data(query_errors)
        .app_data(path_errors)
        .service(
            scope::scope("/api/v1")
                .configure(ingest::configure)
                .configure(lake::configure)
                .configure(events::configure)
                .configure(tables::configure)
                .configure(analytics::configure),
        )
        .configure(health::configure)
        .split_for_parts();
    let routes = web::Data::new(RouteTable::from_openapi(&api));
    app.app_data(routes)
        .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", api))
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header(("Location", "/docs/"))
                    .finish()
            }),
        )
        .default_service(web::to(|req: actix_web::HttpRequest| async move {
            Err::<HttpResponse, _>(ApiError::NotFound(format!(
                "no route for {} {}",
                req.method(),
                req.path()
            )))
        }))
        .wrap(from_fn(check_route))
        .wrap(from_fn(observe))
}

/// A documented method of a route and the query parameters it takes.
type MethodParams = (String, Vec<String>);

/// The documented routes: for each path template, its methods and their query parameters.
struct RouteTable {
    routes: Vec<(ResourceDef, Vec<MethodParams>)>,
}

impl RouteTable {
    fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        let routes = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", &item.get),
                    ("POST", &item.post),
                    ("PUT", &item.put),
                    ("DELETE", &item.delete),
                ]
                .into_iter()
                .filter_map(|(method, op)| {
                    let op = op.as_ref()?;
                    let names = op
                        .parameters
                        .iter()
                        .flatten()
                        .filter(|p| {
                            matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query)
                        })
                        .map(|p| p.name.clone())
                        .collect();
                    Some((method.to_owned(), names))
                })
                .collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        Self { routes }
    }
}

/// Refuses, before any handler runs, a method a documented route does not take (405 with
/// `Allow`) and a query parameter it does not know (400 naming it): a misspelt filter must not
/// silently widen an answer.
async fn check_route(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, actix_web::Error> {
    let refusal = req.app_data::<web::Data<RouteTable>>().and_then(|table| {
        let (_, methods) = table
            .routes
            .iter()
            .find(|(def, _)| def.is_match(req.path()))?;
        let method = req.method().as_str();
        let Some((_, known)) = methods.iter().find(|(m, _)| m == method) else {
            let allowed: Vec<&str> = methods.iter().map(|(m, _)| m.as_str()).collect();
            return Some(ApiError::MethodNotAllowed {
                method: method.to_owned(),
                path: req.path().to_owned(),
                allowed: allowed.join(", "),
            });
        };
        let unknown = req
            .query_string()
            .split('&')
            .filter_map(|pair| pair.split('=').next())
            .filter(|name| !name.is_empty())
            .find(|name| !known.iter().any(|k| k == name))?;
        let accepted = if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        };
        Some(ApiError::invalid(
            unknown.to_owned(),
            format!(
                "unknown parameter {unknown:?} for {method} {}; accepted: {accepted}",
                req.path()
            ),
        ))
    });
    match refusal {
        Some(error) => Ok(req.error_response(error).map_into_right_body()),
        None => Ok(next.call(req).await?.map_into_left_body()),
    }
}

/// Records every request in the metrics (by route template) and the log.
async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    // Bounded label values: any other method is counted as OTHER.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "OPTIONS" | "PATCH") => m.to_owned(),
        _ => "OTHER".to_owned(),
    };
    let path = req.path().to_owned();
    let response = next.call(req).await?;
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(state) = state {
        let metrics = &state.engine.metrics;
        metrics
            .http_requests
            .with_label_values(&[method.as_str(), route.as_str(), &status.to_string()])
            .inc();
        metrics
            .http_duration
            .with_label_values(&[method.as_str(), route.as_str()])
            .observe(elapsed.as_secs_f64());
        info!(state.log, "request"; "method" => &method, "route" => &route, "path" => &path,
            "status" => status, "duration_ms" => elapsed.as_secs_f64() * 1000.0);
    }
    Ok(response)
}
