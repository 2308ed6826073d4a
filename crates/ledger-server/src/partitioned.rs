//! Kafka mode's HTTP servers (ARCHITECTURE decision 7).
//!
//! - The ingest worker ([`ingest_router`]) takes webhooks and send records into the Kafka log and
//!   keeps refused bodies in a local dead-letter store; it holds no ledger state.
//! - A projector member ([`member_router`]) answers for the partitions it owns. A contact's
//!   partition is found the way the producer placed it (murmur2 of the contact key); a question
//!   about a contact in a partition owned elsewhere is forwarded to the peer that owns it, and
//!   account usage is summed over every member's partitions.

use std::sync::{Arc, PoisonError};

use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ledger_pricing::Pricing;
use ledger_projector::Ownership;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};

use crate::access::Caller;
use crate::extract::{error, ApiPath, ApiQuery};
use crate::http::{ApiError, AppState};
use ledger_query::queries::{parse_instant, required_month, GrantRow, Queries, QueryError, UsageView};

/// The webhook-facing routes only: a stateless ingest worker has nothing to query.
pub fn ingest_router(state: Arc<AppState>) -> Router {
    crate::http::ingest_routes().with_state(state)
}

/// What a projector member's API shares.
pub struct MemberState {
    pub ownership: Ownership,
    pub pricing: Arc<Pricing>,
    /// Partitions of the events topic.
    pub partitions: i32,
    /// Base URLs of the other members (`http://host:port`), asked for what they own.
    pub peers: Vec<String>,
    pub metrics: Option<PrometheusHandle>,
    /// API tokens and their scopes, checked on every query route.
    pub access: crate::access::Access,
    /// What the member's projector thread reports (for `/readyz`).
    pub health: Arc<crate::health::ProjectorHealth>,
}

impl crate::access::HasAccess for MemberState {
    fn access(&self) -> &crate::access::Access {
        &self.access
    }
}

impl std::fmt::Debug for MemberState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberState")
            .field("partitions", &self.partitions)
            .field("peers", &self.peers)
            .finish()
    }
}

impl MemberState {
    fn queries_for(&self, partition: i32) -> Option<Queries> {
        let owned = self.ownership.read().unwrap_or_else(PoisonError::into_inner);
        let part = owned.get(&partition)?;
        let queries = Queries::new(part.store.clone(), self.pricing.clone());
        queries.set_ledger(part.ledger.clone());
        Some(queries)
    }

    fn owned(&self) -> Vec<(i32, Queries)> {
        let partitions: Vec<i32> =
            self.ownership.read().unwrap_or_else(PoisonError::into_inner).keys().copied().collect();
        partitions.into_iter().filter_map(|p| self.queries_for(p).map(|q| (p, q))).collect()
    }
}

pub fn member_router(state: Arc<MemberState>) -> Router {
    Router::new()
        .route("/v1/partitions", get(partitions))
        .route("/v1/contacts/{phone_number_id}/{user_id}/eligibility", get(contact_eligibility))
        .route("/v1/contacts/{phone_number_id}/{user_id}/timeline", get(contact_timeline))
        .route("/v1/accounts/{waba_id}/usage", get(account_usage))
        .route("/v1/accounts/{waba_id}/free-grants", get(account_free_grants))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(member_readyz))
        .route("/metrics", get(member_metrics))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .with_state(state)
}

/// The partition a contact's events are in (the producer's placement, see `ingest::partition_key`).
pub fn partition_of_contact(phone_number_id: &str, user_id: &str, partitions: i32) -> i32 {
    ledger_log::partition_for(
        crate::ingest::contact_partition_key(phone_number_id, user_id).as_bytes(),
        partitions,
    )
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PartitionsView {
    pub partitions: i32,
    pub owned: Vec<OwnedView>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct OwnedView {
    pub partition: i32,
    /// The next offset the partition's projector will read (its stored position).
    pub offset: u64,
}

async fn partitions(State(member): State<Arc<MemberState>>) -> Response {
    let owned = member.ownership.read().unwrap_or_else(PoisonError::into_inner);
    let owned = owned
        .iter()
        .map(|(&partition, part)| OwnedView {
            partition,
            offset: part.store.offset(ledger_projector::PARTITION_CONSUMER).unwrap_or(0),
        })
        .collect();
    Json(PartitionsView { partitions: member.partitions, owned }).into_response()
}

/// Blocking HTTP GET of a peer's JSON answer, passed through with its status.
fn get_from_peer(url: &str, authorization: Option<&str>) -> Result<(u16, String), String> {
    let mut request = ureq::get(url);
    // The caller's token goes with a forwarded question: the peer checks its scope as well.
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let response = request
        .config()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .call()
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let body = response.into_body().read_to_string().map_err(|e| format!("{url}: {e}"))?;
    Ok((status, body))
}

/// The peer that owns `partition`, by asking each.
fn owner_of(peers: &[String], partition: i32) -> Option<String> {
    peers.iter().find_map(|peer| {
        let (status, body) = get_from_peer(&format!("{peer}/v1/partitions"), None).ok()?;
        let view: PartitionsView = serde_json::from_str(&body).ok().filter(|_| status == 200)?;
        view.owned.iter().any(|o| o.partition == partition).then(|| peer.clone())
    })
}

/// Answers a contact question here when the partition is local, else from its owner.
async fn for_contact(
    member: Arc<MemberState>,
    caller: PeerCaller,
    (phone, user, waba_id): (String, String, Option<String>),
    path_and_query: String,
    local: impl FnOnce(Queries) -> Result<serde_json::Value, QueryError> + Send + 'static,
) -> Response {
    let partition = partition_of_contact(&phone, &user, member.partitions);
    let answer = tokio::task::spawn_blocking(move || {
        if let Some(queries) = member.queries_for(partition) {
            let in_scope = queries
                .waba_of(&phone, waba_id.as_deref())
                .map(|waba| caller.caller.scope.may_read_waba(waba.as_str()));
            let answer = match in_scope {
                Ok(true) => local(queries),
                Ok(false) => Err(QueryError::NotFound(format!(
                    "no events for business phone number {phone} that this token may read"
                ))),
                Err(error) => Err(error),
            };
            return match answer {
                Ok(value) => (StatusCode::OK, Json(value)).into_response(),
                Err(e) => ApiError(e).into_response(),
            };
        }
        let Some(peer) = owner_of(&member.peers, partition) else {
            return error(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "partition {partition} (contact {phone}/{user}) is owned by no member this one knows"
                ),
            );
        };
        match get_from_peer(&format!("{peer}{path_and_query}"), caller.authorization.as_deref()) {
            Ok((status, body)) => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
            Err(e) => error(
                StatusCode::BAD_GATEWAY,
                format!("forwarding to the owner of partition {partition}: {e}"),
            ),
        }
    })
    .await;
    answer.unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

#[derive(Debug, Deserialize)]
struct ContactParams {
    at: Option<String>,
    waba_id: Option<String>,
}

async fn contact_eligibility(
    State(member): State<Arc<MemberState>>,
    caller: PeerCaller,
    ApiPath((phone, user)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<ContactParams>,
    RawQuery(raw): RawQuery,
) -> Response {
    let at = match params.at.as_deref().map(parse_instant).transpose() {
        Ok(at) => at.unwrap_or_else(crate::ingest::now),
        Err(e) => return ApiError(e).into_response(),
    };
    let path = format!("/v1/contacts/{phone}/{user}/eligibility?{}", raw.unwrap_or_default());
    let (p, u) = (phone.clone(), user.clone());
    let contact = (phone, user, params.waba_id.clone());
    for_contact(member, caller, contact, path, move |queries| {
        let answer = queries.eligibility(&p, &u, at, params.waba_id.as_deref())?;
        serde_json::to_value(answer).map_err(|e| QueryError::BadRequest(e.to_string()))
    })
    .await
}

async fn contact_timeline(
    State(member): State<Arc<MemberState>>,
    caller: PeerCaller,
    ApiPath((phone, user)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<ContactParams>,
    RawQuery(raw): RawQuery,
) -> Response {
    let path = format!("/v1/contacts/{phone}/{user}/timeline?{}", raw.unwrap_or_default());
    let (p, u) = (phone.clone(), user.clone());
    let contact = (phone, user, params.waba_id.clone());
    for_contact(member, caller, contact, path, move |queries| {
        let answer = queries.timeline(&p, &u, params.waba_id.as_deref())?;
        serde_json::to_value(answer).map_err(|e| QueryError::BadRequest(e.to_string()))
    })
    .await
}

#[derive(Debug, Deserialize)]
struct UsageParams {
    month: Option<String>,
    /// `local`: this member's partitions only (what peers ask each other); default: all members.
    scope: Option<String>,
}

/// Account usage summed over partitions: each counts its own contacts' conversations and
/// messages, so the account's figure is the sum — once account-wide allowances are applied over
/// every partition's free grants ([`UsageView::with_account_allowances`]).
async fn account_usage(
    State(member): State<Arc<MemberState>>,
    caller: PeerCaller,
    ApiPath(waba_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<UsageParams>,
) -> Response {
    if let Err(refused) = caller.caller.check_waba(&waba_id) {
        return refused.into_response();
    }
    let authorization = caller.authorization;
    answer_account(move || {
        let month = required_month(params.month)?;
        let mut views = Vec::new();
        for (_, queries) in member.owned() {
            views.push(queries.usage(&waba_id, &month)?);
        }
        if params.scope.as_deref() == Some("local") {
            // Partition sums only: the asking member corrects allowances over every member's grants.
            return Ok(UsageView::sum(&waba_id, &month, views));
        }
        let mut grants = local_grants(&member, &waba_id, &month)?;
        for peer in &member.peers {
            let usage = format!("{peer}/v1/accounts/{waba_id}/usage?month={month}&scope=local");
            views.push(get_json(&usage, authorization.as_deref())?);
            let free_grants = format!("{peer}/v1/accounts/{waba_id}/free-grants?month={month}");
            grants.extend(get_json::<Vec<GrantRow>>(&free_grants, authorization.as_deref())?);
        }
        Ok(UsageView::sum(&waba_id, &month, views).with_account_allowances(grants))
    })
    .await
}

/// The free allowance grants of this member's partitions, for the member that merges usage.
async fn account_free_grants(
    State(member): State<Arc<MemberState>>,
    caller: PeerCaller,
    ApiPath(waba_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<UsageParams>,
) -> Response {
    if let Err(refused) = caller.caller.check_waba(&waba_id) {
        return refused.into_response();
    }
    answer_account(move || Ok(local_grants(&member, &waba_id, &required_month(params.month)?)?)).await
}

/// Why an account route could not answer: the query's own error, or a peer that did not.
enum AccountError {
    Query(QueryError),
    Peer(String),
}

impl From<QueryError> for AccountError {
    fn from(error: QueryError) -> Self {
        AccountError::Query(error)
    }
}

/// Runs an account route's work off the async executor and answers with its JSON or its error.
async fn answer_account<T: Serialize + Send + 'static>(
    work: impl FnOnce() -> Result<T, AccountError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(answer)) => Json(answer).into_response(),
        Ok(Err(AccountError::Query(error))) => ApiError(error).into_response(),
        Ok(Err(AccountError::Peer(reason))) => error(StatusCode::BAD_GATEWAY, reason),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The free allowance grants of the account's month in this member's partitions.
fn local_grants(member: &MemberState, waba_id: &str, month: &str) -> Result<Vec<GrantRow>, QueryError> {
    let mut grants = Vec::new();
    for (_, queries) in member.owned() {
        grants.extend(queries.free_grants(waba_id, month)?);
    }
    Ok(grants)
}

/// A peer's JSON answer; anything but 200 with a readable body is a bad gateway.
fn get_json<T: serde::de::DeserializeOwned>(
    url: &str,
    authorization: Option<&str>,
) -> Result<T, AccountError> {
    let (status, body) = get_from_peer(url, authorization).map_err(AccountError::Peer)?;
    if status != 200 {
        return Err(AccountError::Peer(format!("{url} answered {status}: {body}")));
    }
    serde_json::from_str(&body).map_err(|e| AccountError::Peer(format!("{url}: {e}")))
}

async fn member_readyz(State(member): State<Arc<MemberState>>) -> Response {
    crate::http::readiness_response(member.health.readiness())
}

/// An authorized caller with the `Authorization` header it came with (forwarded to peers).
struct PeerCaller {
    caller: Caller,
    authorization: Option<String>,
}

impl FromRequestParts<Arc<MemberState>> for PeerCaller {
    type Rejection = crate::access::Refused;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<MemberState>,
    ) -> Result<PeerCaller, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let authorization =
            parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(PeerCaller { caller, authorization })
    }
}

async fn member_metrics(State(member): State<Arc<MemberState>>, caller: Caller) -> Response {
    if let Err(refused) = caller.check(caller.scope.metrics, "metrics") {
        return refused.into_response();
    }
    match &member.metrics {
        Some(handle) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "metrics are not enabled"),
    }
}
