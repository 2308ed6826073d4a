//! The HTTP API (axum). Every route is documented in `openapi.json`, served at `/openapi.json`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger_ingest::{Limits, Provider};
use ledger_log::EventLog;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;

use crate::access::{Access, Caller, HasAccess};
pub use crate::extract::error;
use crate::extract::{ApiPath, ApiQuery, Peer};
use crate::ingest::{self, Refusal, Secrets};
use ledger_query::queries::{parse_instant, EntryFilter, Queries, QueryError};

pub const OPENAPI: &str = include_str!("../openapi.json");

/// What the handlers share.
pub struct AppState {
    pub log: Arc<dyn EventLog>,
    pub queries: Queries,
    pub secrets: Secrets,
    pub limits: Limits,
    pub metrics: Option<PrometheusHandle>,
    /// API tokens and their scopes, checked on every query route.
    pub access: Access,
    /// Room for the answers that replay the log or walk a month (`as_of`, reconcile,
    /// attribution): when it is taken, more are answered 503 rather than queued.
    pub expensive: Arc<tokio::sync::Semaphore>,
    /// How many refused bodies each client address may have kept.
    pub refusals: crate::refusals::RefusalLimiter,
    /// What the stage threads report of themselves (for `/readyz`).
    pub health: Arc<crate::health::ProjectorHealth>,
}

impl AppState {
    /// Why the answers are not current, if they are not: the state still loading, or the
    /// stages stopped, failing to write or falling behind.
    pub fn readiness(&self) -> Result<(), String> {
        if !self.queries.is_ready() {
            return Err("loading state from the log".into());
        }
        self.health.readiness()
    }
}

impl HasAccess for AppState {
    fn access(&self) -> &Access {
        &self.access
    }
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
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route; see /openapi.json") })
        .method_not_allowed_fallback(|| async {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route; see /openapi.json")
        })
        .with_state(state)
}

/// A query's error as the API answers it (the status each kind of error means). A wrapper,
/// because `QueryError` is `ledger-query`'s and the response type axum's.
#[derive(Debug)]
pub struct ApiError(pub QueryError);

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ApiError(query_error) = self;
        let status = match &query_error {
            QueryError::NotFound(_) => StatusCode::NOT_FOUND,
            QueryError::BadRequest(_) => StatusCode::BAD_REQUEST,
            QueryError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            QueryError::Forbidden(_) => StatusCode::FORBIDDEN,
            QueryError::NotReady | QueryError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            QueryError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut response = error(status, query_error.to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
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

/// A place among the expensive answers, or 503 when they are all taken.
fn expensive(app: &AppState, what: &str) -> Result<tokio::sync::OwnedSemaphorePermit, QueryError> {
    app.expensive.clone().try_acquire_owned().map_err(|_| {
        metrics::counter!("ledger_queries_busy_total").increment(1);
        QueryError::Busy(format!("too many {what} answers are being computed; retry shortly"))
    })
}

/// Refuses a WABA outside the caller's scope.
fn check_waba(caller: &Caller, waba_id: &str) -> Result<(), QueryError> {
    caller.check_waba(waba_id).map_err(|refused| QueryError::Forbidden(refused.reason))
}

/// A contact question: the contact's WABA must be in the caller's scope; one outside it is
/// answered as unknown, so a token cannot learn which WABA owns a number.
fn check_contact(
    app: &AppState,
    caller: &Caller,
    phone: &str,
    waba_id: Option<&str>,
) -> Result<(), QueryError> {
    let waba = app.queries.waba_of(phone, waba_id)?;
    if caller.scope.may_read_waba(waba.as_str()) {
        return Ok(());
    }
    Err(QueryError::NotFound(format!("no events for business phone number {phone} that this token may read")))
}

/// What a refusal needs to know about its request.
struct Refused<'a> {
    app: &'a Arc<AppState>,
    peer: Peer,
    source: String,
    content_type: Option<String>,
}

async fn refuse(request: &Refused<'_>, refusal: Refusal, body: Bytes) -> Response {
    let Refused { app, peer, source, content_type } = request;
    let (source, content_type) = (source.clone(), content_type.clone());
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
    metrics::counter!("ledger_ingest_refused_total", "status" => refusal.status.to_string()).increment(1);
    if let Err(wait) = app.refusals.check(peer.0.map(|peer| peer.ip())) {
        // Past its allowance of kept refusals: this one is answered, not kept.
        metrics::counter!("ledger_ingest_refusals_not_kept_total").increment(1);
        let seconds = wait.as_secs() + 1;
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{} (not kept: too many refused requests from this address; retry in {seconds} s)",
                refusal.reason
            ),
        );
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let app2 = Arc::clone(app);
    let kept = {
        let refusal = refusal.clone();
        tokio::task::spawn_blocking(move || {
            ingest::keep_refused(app2.queries.store(), &source, &refusal, content_type.as_deref(), &body)
        })
        .await
    };
    let failure = match kept {
        Ok(Ok(())) => return error(status, refusal.reason),
        Ok(Err(e)) if is_out_of_space(&e.to_string()) => {
            let mut response = error(
                StatusCode::INSUFFICIENT_STORAGE,
                format!("{} (and it could not be kept: {e})", refusal.reason),
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        }
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    // Not kept: answer 5xx so the sender retries instead of treating it as refused.
    error(StatusCode::SERVICE_UNAVAILABLE, format!("could not keep the refused body: {failure}"))
}

/// The log could not take a body: 507 when its disk is full, 503 otherwise, with when to retry.
/// Nothing of the body was acknowledged, so the sender's retry loses nothing.
fn log_unavailable(e: &ledger_log::LogError) -> Response {
    let text = e.to_string();
    let status = if is_out_of_space(&text) {
        StatusCode::INSUFFICIENT_STORAGE
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    metrics::counter!("ledger_ingest_unavailable_total", "status" => status.as_u16().to_string())
        .increment(1);
    let mut response = error(status, format!("event log: {text}"));
    // A full disk frees up on an operator's time; a broker or a busy log in a second.
    let retry_after = if status == StatusCode::INSUFFICIENT_STORAGE { "5" } else { "1" };
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(retry_after));
    response
}

/// RocksDB reports a full disk as an IO error naming ENOSPC's text.
pub fn is_out_of_space(text: &str) -> bool {
    text.contains("No space left") || text.contains("NoSpace") || text.contains("out of space")
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
    peer: Peer,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let parsed = match provider.parse::<Provider>() {
        Ok(Provider::SendRecords) | Err(_) => None,
        Ok(p) => Some(p),
    };
    // Unknown names share one source, so that refusals cannot spread over endless sources to
    // escape the per-source cap on dead letters.
    let source = match parsed {
        Some(p) => format!("POST /v1/webhooks/{}", p.as_str()),
        None => "POST /v1/webhooks/<unknown>".to_owned(),
    };
    accept(app, peer, parsed, source, headers, body).await
}

async fn post_sends(
    State(app): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    accept(app, peer, Some(Provider::SendRecords), "POST /v1/sends".into(), headers, body).await
}

async fn accept(
    app: Arc<AppState>,
    peer: Peer,
    provider: Option<Provider>,
    source: String,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received_at = ingest::now();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut request = Refused { app: &app, peer, source, content_type: content_type.clone() };
    let limit = app.limits.body_bytes_max;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let reason = format!("body exceeds the {limit}-byte limit");
            return refuse(&request, Refusal { status: 413, reason }, Bytes::new()).await;
        }
    };
    let Some(provider) = provider else {
        let reason = "unknown provider; known: meta_cloud, sinch, sunshine, gupshup".to_owned();
        return refuse(&request, Refusal { status: 404, reason }, body).await;
    };
    request.source = format!("{} ({})", request.source, provider.as_str());
    if !is_json(&headers) {
        let reason =
            format!("content type must be application/json, not {:?}", content_type.as_deref().unwrap_or(""));
        return refuse(&request, Refusal { status: 415, reason }, body).await;
    }
    if let Err(reason) = ingest::authenticate(provider, &app.secrets, &headers, &body, ingest::now()) {
        return refuse(&request, Refusal { status: 401, reason }, body).await;
    }
    if let Err(reason) = ingest::check_route_format(provider, &app.secrets, &body) {
        return refuse(&request, Refusal { status: 422, reason }, body).await;
    }
    let (records, ids, mut accepted) = match ingest::prepare(provider, &body, received_at, &app.limits) {
        Ok(prepared) => prepared,
        Err(refusal) => return refuse(&request, refusal, body).await,
    };
    metrics::counter!("ledger_ingest_webhooks_total", "provider" => provider.as_str()).increment(1);
    if !records.is_empty() {
        match app.log.append(records).wait().await {
            Ok(answers) => ingest::tally(&mut accepted, &ids, &answers),
            Err(e) => return log_unavailable(&e),
        }
    }
    if !accepted.conflicts.is_empty() {
        // The log keeps the copy it has: a second event under the same id with other content
        // is refused, never substituted (the rest of the body, if any, was appended).
        metrics::counter!("ledger_ingest_conflicts_total").increment(accepted.conflicts.len() as u64);
        let reason =
            format!("event id already in the log with other content: {}", accepted.conflicts.join(", "));
        let kept = refuse(&request, Refusal { status: 409, reason: reason.clone() }, body).await;
        if kept.status() != StatusCode::CONFLICT {
            return kept;
        }
        let body = json!({ "error": "Conflict", "reason": reason, "accepted": accepted });
        return (StatusCode::CONFLICT, Json(body)).into_response();
    }
    metrics::counter!("ledger_ingest_events_total").increment(accepted.new as u64);
    (StatusCode::OK, Json(accepted)).into_response()
}

async fn verify_webhook(
    State(app): State<Arc<AppState>>,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(params): ApiQuery<HashMap<String, String>>,
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
    caller: Caller,
    ApiPath((phone, user)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<EligibilityParams>,
) -> Result<Response, ApiError> {
    check_contact(&app, &caller, &phone, params.waba_id.as_deref())?;
    let at = match params.at.as_deref() {
        Some(text) => parse_instant(text)?,
        None => ingest::now(),
    };
    if let Some(as_of) = params.as_of.as_deref() {
        let as_of = parse_instant(as_of)?;
        let permit = expensive(&app, "as_of")?;
        let answer = blocking(move || {
            let _permit = permit;
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
    caller: Caller,
    ApiPath((phone, user)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<WabaParam>,
) -> Result<Response, ApiError> {
    check_contact(&app, &caller, &phone, params.waba_id.as_deref())?;
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
    caller: Caller,
    ApiPath(waba_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<MonthParam>,
) -> Result<Response, ApiError> {
    check_waba(&caller, &waba_id)?;
    let month = ledger_query::queries::required_month(params.month)?;
    let as_of = params.as_of.as_deref().map(parse_instant).transpose()?;
    let permit = as_of.map(|_| expensive(&app, "as_of")).transpose()?;
    let answer = blocking(move || {
        let _permit = permit;
        match as_of {
            Some(as_of) => app.queries.usage_as_of(&waba_id, &month, as_of),
            None => app.queries.usage(&waba_id, &month),
        }
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
    caller: Caller,
    ApiPath(waba_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<InvoiceParams>,
) -> Result<Response, ApiError> {
    check_waba(&caller, &waba_id)?;
    let month = ledger_query::queries::required_month(params.month)?;
    let as_of = params.as_of.as_deref().map(parse_instant).transpose()?;
    let csv = match params.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(QueryError::BadRequest(format!("format {other:?} is neither json nor csv")).into())
        }
    };
    let permit = as_of.map(|_| expensive(&app, "as_of")).transpose()?;
    let answer = blocking(move || {
        let _permit = permit;
        app.queries.invoice(&waba_id, &month, as_of)
    })
    .await?;
    if csv {
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], answer.to_csv()).into_response());
    }
    Ok(Json(answer).into_response())
}

#[derive(Debug, Deserialize)]
struct AttributionParams {
    month: Option<String>,
}

async fn attribution(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(waba_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<AttributionParams>,
) -> Result<Response, ApiError> {
    check_waba(&caller, &waba_id)?;
    let permit = expensive(&app, "attribution")?;
    let answer = blocking(move || {
        let _permit = permit;
        app.queries.attribution(&waba_id, params.month.as_deref())
    })
    .await?;
    Ok(Json(answer).into_response())
}

#[derive(Debug, Deserialize)]
struct ReconcileParams {
    month: Option<String>,
    tolerance_percent: Option<f64>,
    tolerance_count: Option<i64>,
}

/// The largest analytics body `reconcile` reads: a month of Meta's daily data points for one
/// WABA is far below it.
pub const RECONCILE_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;

/// The body, when not empty, is a saved `conversation_analytics` / `pricing_analytics` response.
async fn reconcile(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(waba_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<ReconcileParams>,
    body: Body,
) -> Result<Response, ApiError> {
    check_waba(&caller, &waba_id)?;
    let body = axum::body::to_bytes(body, RECONCILE_BODY_BYTES_MAX).await.map_err(|_| {
        QueryError::TooLarge(format!("the analytics body exceeds the {RECONCILE_BODY_BYTES_MAX}-byte limit"))
    })?;
    let defaults = ledger_pricing::reconcile::Tolerance::default();
    let tolerance = ledger_pricing::reconcile::Tolerance {
        count: params.tolerance_count.unwrap_or(defaults.count),
        percent: params.tolerance_percent.unwrap_or(defaults.percent),
    };
    if !tolerance.percent.is_finite() || tolerance.percent < 0.0 || tolerance.count < 0 {
        return Err(QueryError::BadRequest("tolerances must be finite and not negative".into()).into());
    }
    let analytics = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            String::from_utf8(body.to_vec())
                .map_err(|_| QueryError::BadRequest("the body is not UTF-8".into()))?,
        )
    };
    let permit = expensive(&app, "reconcile")?;
    let answer = blocking(move || {
        let _permit = permit;
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
    caller: Caller,
    ApiQuery(params): ApiQuery<EntryParams>,
) -> Result<Response, ApiError> {
    match (&params.waba_id, &params.phone_number_id) {
        (_, Some(phone)) => check_contact(&app, &caller, phone, params.waba_id.as_deref())?,
        (Some(waba_id), None) => check_waba(&caller, waba_id)?,
        (None, None) => {}
    }
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

async fn explain(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let answer = blocking(move || app.queries.explain(&id)).await?;
    if !caller.scope.may_read_waba(&answer.entry.waba_id) {
        return Err(
            QueryError::NotFound(format!("no entry {} that this token may read", answer.entry.id)).into()
        );
    }
    Ok(Json(answer).into_response())
}

#[derive(Debug, Deserialize)]
struct DeadLetterParams {
    limit: Option<usize>,
    /// Continue after this cursor (the `next` of the previous page).
    after: Option<String>,
}

async fn dead_letters(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(params): ApiQuery<DeadLetterParams>,
) -> Result<Response, ApiError> {
    caller.check(caller.scope.dead_letters, "dead letters").map_err(|r| QueryError::Forbidden(r.reason))?;
    let limit = ledger_query::queries::bounded_limit(params.limit, 100)?;
    let raw = caller.scope.dead_letter_bodies;
    let answer = blocking(move || {
        ledger_query::dead_letters::page(app.queries.store(), params.after.as_deref(), limit, raw)
    })
    .await?;
    Ok(Json(answer).into_response())
}

async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    readiness_response(app.readiness())
}

/// `/readyz`'s answer, embedded or Kafka member: "ready", or 503 saying why not.
pub(crate) fn readiness_response(readiness: Result<(), String>) -> Response {
    match readiness {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(reason) => {
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}"));
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
    }
}

async fn metrics_text(State(app): State<Arc<AppState>>, caller: Caller) -> Result<Response, ApiError> {
    caller.check(caller.scope.metrics, "metrics").map_err(|r| QueryError::Forbidden(r.reason))?;
    match &app.metrics {
        Some(handle) => {
            Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response())
        }
        None => Err(QueryError::NotFound("metrics are not enabled".into()).into()),
    }
}

#[cfg(test)]
mod contract {
    //! `/openapi.json` checked against the handlers' own parameter types, so that the two cannot
    //! drift: every query parameter a handler reads is documented, and nothing else.

    use std::collections::BTreeSet;

    use serde::de::{DeserializeOwned, Visitor};
    use serde_json::Value;

    use super::*;

    /// A deserializer that only records the field names a struct asks for.
    struct FieldNames<'a>(&'a mut Vec<&'static str>);

    impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.extend_from_slice(fields);
            Err(serde::de::Error::custom("probed"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
            unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }

    fn fields_of<T: DeserializeOwned>() -> BTreeSet<&'static str> {
        let mut fields = Vec::new();
        let _ = T::deserialize(FieldNames(&mut fields));
        fields.into_iter().collect()
    }

    fn documented_query(spec: &Value, method: &str, path: &str) -> BTreeSet<String> {
        let op = &spec["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        op["parameters"]
            .as_array()
            .map(|params| {
                params
                    .iter()
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn every_query_parameter_a_handler_reads_is_documented_and_only_those() {
        let spec: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        let cases: Vec<(&str, &str, BTreeSet<&'static str>)> = vec![
            ("get", "/v1/contacts/{phone_number_id}/{user_id}/eligibility", fields_of::<EligibilityParams>()),
            ("get", "/v1/contacts/{phone_number_id}/{user_id}/timeline", fields_of::<WabaParam>()),
            ("get", "/v1/accounts/{waba_id}/usage", fields_of::<MonthParam>()),
            ("get", "/v1/accounts/{waba_id}/invoice", fields_of::<InvoiceParams>()),
            ("get", "/v1/accounts/{waba_id}/attribution", fields_of::<AttributionParams>()),
            ("post", "/v1/accounts/{waba_id}/reconcile", fields_of::<ReconcileParams>()),
            ("get", "/v1/entries", fields_of::<EntryParams>()),
            ("get", "/v1/dead-letters", fields_of::<DeadLetterParams>()),
        ];
        for (method, path, fields) in cases {
            assert!(!fields.is_empty(), "{path}: the probe read the handler's fields");
            let fields: BTreeSet<String> = fields.into_iter().map(str::to_owned).collect();
            assert_eq!(documented_query(&spec, method, path), fields, "{method} {path}");
        }
    }

    #[test]
    fn documented_bounds_are_the_handlers_bounds() {
        let spec: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        for path in ["/v1/entries", "/v1/dead-letters"] {
            let limit = spec["paths"][path]["get"]["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
                .expect("limit documented");
            assert_eq!(limit["schema"]["minimum"], 1, "{path}");
            assert_eq!(limit["schema"]["maximum"], ledger_query::queries::MAX_ANSWER_ITEMS, "{path}");
        }
        let instant = &spec["components"]["schemas"]["Instant"]["anyOf"][0];
        assert_eq!(instant["minimum"], ledger_core::event::EVENT_TIME_MIN, "Unix seconds from 2010");
        assert_eq!(instant["maximum"], ledger_core::event::EVENT_TIME_MAX - 1, "to the end of 2099");
        let month = spec["components"]["schemas"]["Month"]["pattern"].as_str().expect("month pattern");
        assert_eq!(month, "^20[1-9][0-9]-(0[1-9]|1[0-2])$");
        assert!(
            ledger_query::queries::parse_month("2026-12").is_ok()
                && ledger_query::queries::parse_month("2026-13").is_err()
        );
        assert!(
            ledger_query::queries::parse_instant("1262303999").is_err(),
            "before 2010 is refused as documented"
        );
        assert!(ledger_query::queries::parse_instant("4102444799").is_ok());
    }
}
