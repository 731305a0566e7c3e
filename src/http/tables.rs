//! `/api/v1/mentions` and `/api/v1/gkg`: pages of the mentions and GKG tables with filters
//! over their own columns.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::error::{ApiError, ErrorBody, QueryRefusal};
use super::params::{bounded, checked_list, feeds, list, range};
use super::AppState;
use crate::query::tables::{GkgFilter, MentionFilter, TableFilter, TablePage};

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(mentions).service(gkg);
}

/// The batch range, page size and cursor both tables take.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TablePageQuery {
    /// First batch date to read, YYYY-MM-DD (UTC, inclusive); only those partitions are read.
    #[param(value_type = Option<String>, format = Date, example = "2015-02-18")]
    since: Option<String>,
    /// Last batch date to read, YYYY-MM-DD (UTC, inclusive).
    #[param(value_type = Option<String>, format = Date, example = "2015-02-18")]
    until: Option<String>,
    /// Rows per page, 1..=1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000, example = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page; the filters must stay the same.
    cursor: Option<String>,
    /// Feeds, comma-separated: english, translingual (default: all).
    #[param(example = "english")]
    feed: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MentionQuery {
    /// GlobalEventIDs, comma-separated: the mentions of these events.
    #[param(example = "410412347")]
    event_id: Option<String>,
    /// `MentionSourceName` values, comma-separated (`bbc.co.uk`).
    #[param(example = "bbc.co.uk")]
    source: Option<String>,
    /// `MentionType` values, comma-separated: 1 web, 2 citation only, 3 core, 4 DTIC, 5
    /// JSTOR, 6 non-textual.
    #[param(example = "1")]
    mention_type: Option<String>,
    /// Smallest `Confidence`, 0..=100.
    #[param(value_type = Option<u32>, minimum = 0, maximum = 100, example = 50)]
    min_confidence: Option<String>,
    /// Case-insensitive substring of `MentionIdentifier` (the article's URL).
    #[param(example = "reuters")]
    query: Option<String>,
}

/// Mentions matching every filter given, newest batch first, a page at a time.
#[utoipa::path(
    tag = "mentions",
    params(MentionQuery, TablePageQuery),
    responses(
        (status = 200, description = "A page of mentions (follow next_cursor for the next)", body = TablePage),
        (status = 400, description = "A bad parameter, or a cursor from other filters", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "event_id must be GlobalEventIDs (integers), got \"x\"", "parameter": "event_id"})),
        QueryRefusal,
    )
)]
#[get("/mentions")]
async fn mentions(
    state: web::Data<AppState>,
    filters: web::Query<MentionQuery>,
    page: web::Query<TablePageQuery>,
) -> Result<HttpResponse, ApiError> {
    let integer = |v: &str| !v.is_empty() && v.len() <= 18 && v.bytes().all(|b| b.is_ascii_digit());
    let parsed = |items: Vec<String>| -> Vec<i64> {
        items.iter().map(|v| v.parse().expect("checked")).collect()
    };
    let filter = MentionFilter {
        batch: range(page.since.as_deref(), page.until.as_deref())?,
        event_ids: parsed(checked_list(
            "event_id",
            filters.event_id.as_deref(),
            "GlobalEventIDs (integers)",
            integer,
        )?),
        sources: list(filters.source.as_deref())
            .into_iter()
            .map(|s| s.to_lowercase())
            .collect(),
        mention_types: parsed(checked_list(
            "mention_type",
            filters.mention_type.as_deref(),
            "mention types 1 to 6",
            |v| matches!(v, "1" | "2" | "3" | "4" | "5" | "6"),
        )?),
        min_confidence: match filters.min_confidence.as_deref().filter(|v| !v.is_empty()) {
            None => None,
            Some(raw) => Some(bounded("min_confidence", Some(raw), 0, 0, 100)? as i64),
        },
        text: filters.query.clone().filter(|q| !q.is_empty()),
        feeds: feeds(page.feed.as_deref())?,
    };
    answer(&state, TableFilter::Mentions(filter), &page).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GkgQuery {
    /// GKG theme names, comma-separated (`PROTEST`, `TAX_FNCACT_PRESIDENT`): records whose
    /// `Themes` list has any of them. Matched whole, in GDELT's upper case.
    #[param(example = "PROTEST")]
    theme: Option<String>,
    /// Case-insensitive substrings of `Persons`, comma-separated: any of them.
    #[param(example = "obama")]
    person: Option<String>,
    /// Case-insensitive substrings of `Organizations`, comma-separated: any of them.
    #[param(example = "united nations")]
    organization: Option<String>,
    /// `SourceCommonName` values, comma-separated (`bbc.co.uk`).
    #[param(example = "bbc.co.uk")]
    source: Option<String>,
    /// Case-insensitive substring of `DocumentIdentifier` (the article's URL).
    #[param(example = "climate")]
    query: Option<String>,
}

/// GKG records matching every filter given, newest batch first, a page at a time.
#[utoipa::path(
    tag = "gkg",
    params(GkgQuery, TablePageQuery),
    responses(
        (status = 200, description = "A page of GKG records (follow next_cursor for the next); nested fields keep GDELT's delimiters", body = TablePage),
        (status = 400, description = "A bad parameter, or a cursor from other filters", body = ErrorBody,
         example = json!({"code": "invalid_parameter", "message": "limit must be an integer from 1 to 1000, got \"0\"", "parameter": "limit"})),
        QueryRefusal,
    )
)]
#[get("/gkg")]
async fn gkg(
    state: web::Data<AppState>,
    filters: web::Query<GkgQuery>,
    page: web::Query<TablePageQuery>,
) -> Result<HttpResponse, ApiError> {
    let theme = |v: &str| {
        v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    };
    let filter = GkgFilter {
        batch: range(page.since.as_deref(), page.until.as_deref())?,
        themes: checked_list(
            "theme",
            filters
                .theme
                .as_deref()
                .map(str::to_ascii_uppercase)
                .as_deref(),
            "GKG theme names (letters, digits and _)",
            theme,
        )?,
        persons: list(filters.person.as_deref()),
        organizations: list(filters.organization.as_deref()),
        sources: list(filters.source.as_deref())
            .into_iter()
            .map(|s| s.to_lowercase())
            .collect(),
        text: filters.query.clone().filter(|q| !q.is_empty()),
        feeds: feeds(page.feed.as_deref())?,
    };
    answer(&state, TableFilter::Gkg(filter), &page).await
}

async fn answer(
    state: &AppState,
    filter: TableFilter,
    page: &TablePageQuery,
) -> Result<HttpResponse, ApiError> {
    let limit = bounded("limit", page.limit.as_deref(), 100, 1, 1000)?;
    let cursor = page.cursor.clone().filter(|c| !c.is_empty());
    let page = state.engine.query.table_page(filter, limit, cursor).await?;
    Ok(HttpResponse::Ok().json(page))
}
