//! Extractors that refuse with the API's JSON error body. axum's own `Query` and `Path`
//! rejections answer `text/plain` (e.g. a repeated `?month=`), outside the documented contract.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::json;

/// The API's error body: `{"error": <status text>, "reason": <why>}`.
pub fn error(status: StatusCode, reason: impl Into<String>) -> Response {
    (status, Json(json!({ "error": status.canonical_reason().unwrap_or(""), "reason": reason.into() })))
        .into_response()
}

/// Query parameters, refused with a JSON 400 naming the problem.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| error(StatusCode::BAD_REQUEST, rejection.body_text()))
    }
}

/// Path parameters, refused with a JSON 400 naming the problem.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|rejection| error(StatusCode::BAD_REQUEST, rejection.body_text()))
    }
}

/// The peer's address, when the request came through the listener (`crate::listener`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let peer =
            parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0);
        Ok(Peer(peer))
    }
}
