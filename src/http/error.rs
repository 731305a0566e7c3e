//! The one JSON error body and the one place errors become HTTP statuses.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::catalog::CatalogError;
use crate::jobs::SubmitError;
use crate::maintenance::MaintenanceError;
use crate::query::QueryError;

/// Every error answer has this body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, snake_case: `invalid_parameter`, `not_found`, `method_not_allowed`, `queue_full`, `shutting_down`,
    /// `busy`, `query_timeout`, `query_too_large`, `internal`.
    #[schema(example = "invalid_parameter")]
    pub code: &'static str,
    /// What went wrong, as a sentence.
    #[schema(example = "limit must be an integer from 1 to 500, got \"0\"")]
    pub message: String,
    /// The query or path parameter at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "limit")]
    pub parameter: Option<Cow<'static, str>>,
}

/// The answers every query endpoint gives when the query engine refuses or fails, declared once
/// for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
pub enum QueryRefusal {
    /// The query would read more than `query.max_scan_files` files or ran longer than
    /// `query.timeout_ms`: narrow the dates or add filters.
    #[response(
        status = 422,
        example = json!({"code": "query_too_large", "message": "the query would read 61234 Parquet files, more than query.max_scan_files (50000); narrow since/until"})
    )]
    TooLarge(ErrorBody),
    /// Every query connection stayed busy for `query.queue_timeout_ms`; see Retry-After.
    #[response(
        status = 503,
        headers(("Retry-After" = u32, description = "Seconds to wait before retrying")),
        example = json!({"code": "busy", "message": "every query connection is busy (query.max_concurrent = 4); retry shortly"})
    )]
    Busy(ErrorBody),
    /// The query failed.
    #[response(status = 500)]
    Failed(ErrorBody),
}

/// Errors the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    InvalidParameter {
        parameter: Cow<'static, str>,
        message: String,
    },
    #[error("{method} is not accepted on {path}; accepted: {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Maintenance(#[from] MaintenanceError),
    #[error("a background task failed: {0}")]
    Task(String),
}

impl ApiError {
    /// A 400 naming the parameter.
    pub fn invalid(parameter: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::InvalidParameter {
            parameter: parameter.into(),
            message: message.into(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidParameter { .. } | Self::Query(QueryError::Cursor(_)) => {
                "invalid_parameter"
            }
            Self::Query(QueryError::Busy(_)) => "busy",
            Self::Query(QueryError::TimedOut { .. }) => "query_timeout",
            Self::Query(QueryError::TooLarge { .. }) => "query_too_large",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Submit(SubmitError::QueueFull { .. }) => "queue_full",
            Self::Submit(SubmitError::ShuttingDown) => "shutting_down",
            Self::Submit(SubmitError::Catalog(_) | SubmitError::Task(_))
            | Self::Query(_)
            | Self::Catalog(_)
            | Self::Maintenance(_)
            | Self::Task(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidParameter { .. } | Self::Query(QueryError::Cursor(_)) => {
                StatusCode::BAD_REQUEST
            }
            Self::Query(QueryError::Busy(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Query(QueryError::TimedOut { .. } | QueryError::TooLarge { .. }) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Submit(SubmitError::QueueFull { .. } | SubmitError::ShuttingDown) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Submit(SubmitError::Catalog(_) | SubmitError::Task(_))
            | Self::Query(_)
            | Self::Catalog(_)
            | Self::Maintenance(_)
            | Self::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            // A query slot frees within a query's time; an ingestion queue slot takes longer.
            Self::Query(QueryError::Busy(_)) => {
                response.insert_header(("Retry-After", "1"));
            }
            _ if self.status_code() == StatusCode::SERVICE_UNAVAILABLE => {
                response.insert_header(("Retry-After", "30"));
            }
            Self::MethodNotAllowed { allowed, .. } => {
                response.insert_header(("Allow", allowed.as_str()));
            }
            _ => {}
        }
        response.json(ErrorBody {
            code: self.code(),
            message: self.to_string(),
            parameter: match self {
                Self::InvalidParameter { parameter, .. } => Some(parameter.clone()),
                Self::Query(QueryError::Cursor(_)) => Some(Cow::Borrowed("cursor")),
                _ => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn answer(error: ApiError) -> (u16, Option<String>, serde_json::Value) {
        let response = error.error_response();
        let status = response.status().as_u16();
        let retry = response
            .headers()
            .get("Retry-After")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().try_into_bytes().unwrap();
        (status, retry, serde_json::from_slice(&body).unwrap())
    }

    #[test]
    fn query_limits_answer_422_and_a_busy_pool_503_with_retry_after() {
        assert_eq!(
            answer(ApiError::Query(QueryError::TimedOut { limit_ms: 30_000 })),
            (
                422,
                None,
                serde_json::json!({
                    "code": "query_timeout",
                    "message": "the query ran longer than 30000 ms (query.timeout_ms) and was stopped; narrow since/until or add filters"
                })
            )
        );
        assert_eq!(
            answer(ApiError::Query(QueryError::TooLarge {
                files: 61_234,
                max: 50_000
            })),
            (
                422,
                None,
                serde_json::json!({
                    "code": "query_too_large",
                    "message": "the query would read 61234 Parquet files, more than query.max_scan_files (50000); narrow since/until"
                })
            )
        );
        assert_eq!(answer(ApiError::Query(QueryError::Busy(4))).0, 503);
        assert_eq!(
            answer(ApiError::Query(QueryError::Busy(4))).1.as_deref(),
            Some("1")
        );
    }
}
