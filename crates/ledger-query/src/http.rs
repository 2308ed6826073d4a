//! The HTTP API (axum). Every route is documented in `openapi.json`, served at `/openapi.json`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger_ingest::{Limits, Provider};
use ledger_log::EventLog;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;

use crate::ingest::{self, Refusal, Secrets};
use crate::queries::{parse_instant, EntryFilter, Queries, QueryError};

pub const OPENAPI: &str = include_str!("../openapi.json");

/// What the handlers share.
pub struct AppState {
    pub log: Arc<dyn EventLog>,
    pub queries: Queries,
    pub secrets: Secrets,
    pub limits: Limits,
    pub metrics: Option<PrometheusHandle>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("secrets", &self.secrets).finish_non_exhaustive()
    }
}

/// Webhooks and send records in, dead letters out, health and metrics: what an ingest worker
/// serves in Kafka mode, and part of the embedded server.
pub fn ingest_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/webhooks/{provider}", post(post_webhook).get(verify_webhook))
        .route("/v1/sends", post(post_sends))
        .route("/v1/dead-letters", get(dead_letters))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_text))
        // Bodies are read with the ingest limit below, so an oversized one is answered 413 and
        // kept as a dead letter by the handler rather than cut off by a layer.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

pub fn router(state: Arc<AppState>) -> Router {
    ingest_routes()
        .route("/v1/contacts/{phone_number_id}/{user_id}/eligibility", get(eligibility))
        .route("/v1/contacts/{phone_number_id}/{user_id}/timeline", get(timeline))
        .route("/v1/accounts/{waba_id}/usage", get(usage))
        .route("/v1/accounts/{waba_id}/invoice", get(invoice))
        .route("/v1/accounts/{waba_id}/attribution", get(attribution))
        .route("/v1/accounts/{waba_id}/reconcile", post(reconcile))
        .route("/v1/entries", get(entries))
        .route("/v1/entries/{id}/explain", get(explain))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .with_state(state)
}

fn error(status: StatusCode, reason: impl Into<String>) -> Response {
    (status, Json(json!({ "error": status.canonical_reason().unwrap_or(""), "reason": reason.into() })))
        .into_response()
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let status = match &self {
            QueryError::NotFound(_) => StatusCode::NOT_FOUND,
            QueryError::BadRequest(_) => StatusCode::BAD_REQUEST,
            QueryError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            QueryError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        error(status, self.to_string())
    }
}

/// Runs blocking store or ledger work off the async executor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Result<T, QueryError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(QueryError::BadRequest(format!("query failed: {e}"))))
}

async fn refuse(
    app: &Arc<AppState>,
    source: String,
    refusal: Refusal,
    content_type: Option<String>,
    body: Bytes,
) -> Response {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
    metrics::counter!("ledger_ingest_refused_total", "status" => refusal.status.to_string()).increment(1);
    let app2 = app.clone();
    let kept = {
        let refusal = refusal.clone();
        tokio::task::spawn_blocking(move || {
            ingest::keep_refused(app2.queries.store(), &source, &refusal, content_type.as_deref(), &body)
        })
        .await
    };
    let failure = match kept {
        Ok(Ok(())) => return error(status, refusal.reason),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    // Not kept: answer 5xx so the sender retries instead of treating it as refused.
    error(StatusCode::SERVICE_UNAVAILABLE, format!("could not keep the refused body: {failure}"))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().eq_ignore_ascii_case("application/json") || v.trim().ends_with("+json"))
        .unwrap_or(false)
}

async fn post_webhook(
    State(app): State<Arc<AppState>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let source = format!("POST /v1/webhooks/{provider}");
    let provider = match provider.parse::<Provider>() {
        Ok(Provider::SendRecords) | Err(_) => None,
        Ok(p) => Some(p),
    };
    accept(app, provider, source, headers, body).await
}

async fn post_sends(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    accept(app, Some(Provider::SendRecords), "POST /v1/sends".into(), headers, body).await
}

async fn accept(
    app: Arc<AppState>,
    provider: Option<Provider>,
    source: String,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received_at = ingest::now();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let limit = app.limits.body_bytes_max;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let reason = format!("body exceeds the {limit}-byte limit");
            return refuse(&app, source, Refusal { status: 413, reason }, content_type, Bytes::new()).await;
        }
    };
    let Some(provider) = provider else {
        let reason = format!("unknown provider; known: meta_cloud, sinch, sunshine, gupshup ({source})");
        return refuse(&app, source, Refusal { status: 404, reason }, content_type, body).await;
    };
    let source = format!("{source} ({})", provider.as_str());
    if !is_json(&headers) {
        let reason =
            format!("content type must be application/json, not {:?}", content_type.as_deref().unwrap_or(""));
        return refuse(&app, source, Refusal { status: 415, reason }, content_type, body).await;
    }
    if let Err(reason) = ingest::authenticate(provider, &app.secrets, &headers, &body, ingest::now()) {
        return refuse(&app, source, Refusal { status: 401, reason }, content_type, body).await;
    }
    let (records, mut accepted) = match ingest::prepare(provider, &body, received_at, &app.limits) {
        Ok(prepared) => prepared,
        Err(refusal) => return refuse(&app, source, refusal, content_type, body).await,
    };
    metrics::counter!("ledger_ingest_webhooks_total", "provider" => provider.as_str()).increment(1);
    if !records.is_empty() {
        match app.log.append(records).wait().await {
            Ok(answers) => ingest::tally(&mut accepted, &answers),
            Err(e) => {
                let mut response = error(StatusCode::SERVICE_UNAVAILABLE, format!("event log: {e}"));
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
        }
    }
    metrics::counter!("ledger_ingest_events_total").increment(accepted.new as u64);
    (StatusCode::OK, Json(accepted)).into_response()
}

async fn verify_webhook(
    State(app): State<Arc<AppState>>,
    Path(provider): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if !matches!(provider.parse::<Provider>(), Ok(Provider::MetaCloud)) {
        return error(StatusCode::NOT_FOUND, "only Meta webhooks have a verification handshake");
    }
    let Some(token) = app.secrets.meta_verify_token.as_deref() else {
        return error(StatusCode::FORBIDDEN, "no verify token is configured");
    };
    let request = ledger_ingest::signature::VerificationRequest {
        mode: params.get("hub.mode").map(String::as_str),
        verify_token: params.get("hub.verify_token").map(String::as_str),
        challenge: params.get("hub.challenge").map(String::as_str),
    };
    match ledger_ingest::signature::meta_verification_challenge(&request, token) {
        Ok(challenge) => (StatusCode::OK, challenge.to_owned()).into_response(),
        Err(e) => error(StatusCode::FORBIDDEN, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct EligibilityParams {
    at: Option<String>,
    waba_id: Option<String>,
    as_of: Option<String>,
}

async fn eligibility(
    State(app): State<Arc<AppState>>,
    Path((phone, user)): Path<(String, String)>,
    Query(params): Query<EligibilityParams>,
) -> Result<Response, QueryError> {
    let at = match params.at.as_deref() {
        Some(text) => parse_instant(text)?,
        None => ingest::now(),
    };
    if let Some(as_of) = params.as_of.as_deref() {
        let as_of = parse_instant(as_of)?;
        let answer = blocking(move || {
            app.queries.eligibility_as_of(&phone, &user, at, params.waba_id.as_deref(), as_of)
        })
        .await?;
        return Ok(Json(answer).into_response());
    }
    // Answered from memory under a read lock held for microseconds: no blocking pool hop.
    let answer = app.queries.eligibility(&phone, &user, at, params.waba_id.as_deref())?;
    Ok(Json(answer).into_response())
}

#[derive(Debug, Deserialize)]
struct WabaParam {
    waba_id: Option<String>,
}

async fn timeline(
    State(app): State<Arc<AppState>>,
    Path((phone, user)): Path<(String, String)>,
    Query(params): Query<WabaParam>,
) -> Result<Response, QueryError> {
    let answer = blocking(move || app.queries.timeline(&phone, &user, params.waba_id.as_deref())).await?;
    Ok(Json(answer).into_response())
}

#[derive(Debug, Deserialize)]
struct MonthParam {
    month: Option<String>,
    as_of: Option<String>,
}

async fn usage(
    State(app): State<Arc<AppState>>,
    Path(waba_id): Path<String>,
    Query(params): Query<MonthParam>,
) -> Result<Response, QueryError> {
    let month = crate::queries::required_month(params.month)?;
    let as_of = params.as_of.as_deref().map(parse_instant).transpose()?;
    let answer = blocking(move || match as_of {
        Some(as_of) => app.queries.usage_as_of(&waba_id, &month, as_of),
        None => app.queries.usage(&waba_id, &month),
    })
    .await?;
    Ok(Json(answer).into_response())
}

#[derive(Debug, Deserialize)]
struct InvoiceParams {
    month: Option<String>,
    as_of: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

async fn invoice(
    State(app): State<Arc<AppState>>,
    Path(waba_id): Path<String>,
    Query(params): Query<InvoiceParams>,
) -> Result<Response, QueryError> {
    let month = crate::queries::required_month(params.month)?;
    let as_of = params.as_of.as_deref().map(parse_instant).transpose()?;
    let csv = match params.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(QueryError::BadRequest(format!("format {other:?} is neither json nor csv")))
        }
    };
    let answer = blocking(move || app.queries.invoice(&waba_id, &month, as_of)).await?;
    if csv {
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], answer.to_csv()).into_response());
    }
    Ok(Json(answer).into_response())
}

async fn attribution(
    State(app): State<Arc<AppState>>,
    Path(waba_id): Path<String>,
    Query(params): Query<MonthParam>,
) -> Result<Response, QueryError> {
    let answer = blocking(move || app.queries.attribution(&waba_id, params.month.as_deref())).await?;
    Ok(Json(answer).into_response())
}

#[derive(Debug, Deserialize)]
struct ReconcileParams {
    month: Option<String>,
    tolerance_percent: Option<f64>,
    tolerance_count: Option<i64>,
}

/// The body, when not empty, is a saved `conversation_analytics` / `pricing_analytics` response.
async fn reconcile(
    State(app): State<Arc<AppState>>,
    Path(waba_id): Path<String>,
    Query(params): Query<ReconcileParams>,
    body: Bytes,
) -> Result<Response, QueryError> {
    let defaults = ledger_pricing::reconcile::Tolerance::default();
    let tolerance = ledger_pricing::reconcile::Tolerance {
        count: params.tolerance_count.unwrap_or(defaults.count),
        percent: params.tolerance_percent.unwrap_or(defaults.percent),
    };
    let analytics = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            String::from_utf8(body.to_vec())
                .map_err(|_| QueryError::BadRequest("the body is not UTF-8".into()))?,
        )
    };
    let answer = blocking(move || {
        app.queries.reconcile(&waba_id, params.month.as_deref(), analytics.as_deref(), tolerance)
    })
    .await?;
    Ok(Json(answer).into_response())
}

#[derive(Debug, Deserialize)]
struct EntryParams {
    waba_id: Option<String>,
    phone_number_id: Option<String>,
    user_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

async fn entries(
    State(app): State<Arc<AppState>>,
    Query(params): Query<EntryParams>,
) -> Result<Response, QueryError> {
    let filter = EntryFilter {
        waba_id: params.waba_id,
        phone_number_id: params.phone_number_id,
        user_id: params.user_id,
        from: params.from.as_deref().map(parse_instant).transpose()?,
        to: params.to.as_deref().map(parse_instant).transpose()?,
        limit: params.limit,
    };
    let answer = blocking(move || app.queries.entries(&filter)).await?;
    Ok(Json(answer).into_response())
}

async fn explain(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Response, QueryError> {
    let answer = blocking(move || app.queries.explain(&id)).await?;
    Ok(Json(answer).into_response())
}

#[derive(Debug, Deserialize)]
struct LimitParam {
    limit: Option<usize>,
}

async fn dead_letters(
    State(app): State<Arc<AppState>>,
    Query(params): Query<LimitParam>,
) -> Result<Response, QueryError> {
    let limit = crate::queries::bounded_limit(params.limit, 100)?;
    let answer = blocking(move || Ok(app.queries.store().dead_letters(limit)?)).await?;
    Ok(Json(answer).into_response())
}

async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    if app.queries.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        error(StatusCode::SERVICE_UNAVAILABLE, "loading state from the log")
    }
}

async fn metrics_text(State(app): State<Arc<AppState>>) -> Response {
    match &app.metrics {
        Some(handle) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "metrics are not enabled"),
    }
}
