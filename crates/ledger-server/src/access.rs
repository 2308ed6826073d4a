//! Who may read what: API tokens with scopes, checked on every query route.
//!
//! Webhooks and send records authenticate with their providers' secrets (`ingest`); this is for
//! the answers. A token names the WABAs it may read (or all) and whether it may read dead
//! letters (and their raw bodies) and metrics. With no token configured, queries are answered
//! only to loopback peers: an operator on the machine, never the network. Once any token is
//! configured every query needs one, loopback included, because a reverse proxy on the same
//! host makes every client look local.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// The WABAs a token may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wabas {
    All,
    Only(BTreeSet<String>),
}

/// What a caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub wabas: Wabas,
    /// `GET /v1/dead-letters` (bodies redacted).
    pub dead_letters: bool,
    /// Dead letters with their bodies as received (phone numbers, names, message text).
    pub dead_letter_bodies: bool,
    /// `GET /metrics`.
    pub metrics: bool,
}

impl Scope {
    /// A loopback caller of a server with no tokens: the operator, who may read everything.
    pub fn everything() -> Scope {
        Scope { wabas: Wabas::All, dead_letters: true, dead_letter_bodies: true, metrics: true }
    }

    pub fn may_read_waba(&self, waba_id: &str) -> bool {
        match &self.wabas {
            Wabas::All => true,
            Wabas::Only(wabas) => wabas.contains(waba_id),
        }
    }

    /// The one WABA a token is limited to, if it is limited to exactly one.
    pub fn only_waba(&self) -> Option<&str> {
        match &self.wabas {
            Wabas::Only(wabas) if wabas.len() == 1 => wabas.iter().next().map(String::as_str),
            _ => None,
        }
    }
}

/// A configured API token.
#[derive(Clone)]
pub struct ApiToken {
    /// Shown in logs and refusals; never the secret.
    pub name: String,
    pub secret: String,
    pub scope: Scope,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken").field("name", &self.name).field("scope", &self.scope).finish()
    }
}

/// The server's tokens. Empty: queries only from loopback.
#[derive(Debug, Clone, Default)]
pub struct Access {
    tokens: Arc<Vec<ApiToken>>,
}

/// A token the server refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("API token {name:?} is {length} bytes long: a token needs at least {min}", min = crate::ingest::SECRET_BYTES_MIN)]
    Weak { name: String, length: usize },
    #[error("API tokens {first:?} and {second:?} have the same secret: each caller needs its own")]
    Shared { first: String, second: String },
    #[error("API token {name:?} may read nothing: give it wabas (\"*\" for all), dead_letters or metrics")]
    Empty { name: String },
}

impl Access {
    pub fn new(tokens: Vec<ApiToken>) -> Result<Access, AccessError> {
        for (i, token) in tokens.iter().enumerate() {
            let length = token.secret.trim().len();
            if length < crate::ingest::SECRET_BYTES_MIN {
                return Err(AccessError::Weak { name: token.name.clone(), length });
            }
            let scope = &token.scope;
            if scope.wabas == Wabas::Only(BTreeSet::new()) && !scope.dead_letters && !scope.metrics {
                return Err(AccessError::Empty { name: token.name.clone() });
            }
            if let Some(other) = tokens[..i].iter().find(|other| other.secret == token.secret) {
                return Err(AccessError::Shared { first: other.name.clone(), second: token.name.clone() });
            }
        }
        Ok(Access { tokens: Arc::new(tokens) })
    }

    pub fn is_configured(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The scope of a request with this `Authorization` header from this peer.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        peer: Option<SocketAddr>,
    ) -> Result<Caller, Refused> {
        if self.tokens.is_empty() {
            return match peer {
                Some(peer) if peer.ip().is_loopback() => {
                    Ok(Caller { name: None, scope: Scope::everything() })
                }
                _ => Err(Refused::unauthenticated(
                    "no API tokens are configured, so queries are answered only on loopback; configure \
                     [[api_tokens]] to answer other clients",
                )),
            };
        }
        let Some(given) = authorization.and_then(|value| value.trim().strip_prefix("Bearer ")) else {
            return Err(Refused::unauthenticated("an API token is required: Authorization: Bearer <token>"));
        };
        // Compare against every token, in constant time each, so timing tells nothing.
        let mut found = None;
        for token in self.tokens.iter() {
            if ledger_ingest::signature::verify_shared_secret(&token.secret, Some(given.trim())).is_ok() {
                found = Some(token);
            }
        }
        match found {
            Some(token) => Ok(Caller { name: Some(token.name.clone()), scope: token.scope.clone() }),
            None => Err(Refused::unauthenticated("the API token is not known")),
        }
    }
}

/// An authorized caller of a query route.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name (`None`: a loopback caller of a server without tokens).
    pub name: Option<String>,
    pub scope: Scope,
}

impl Caller {
    /// Refuses a WABA outside the caller's scope.
    pub fn check_waba(&self, waba_id: &str) -> Result<(), Refused> {
        if self.scope.may_read_waba(waba_id) {
            Ok(())
        } else {
            Err(Refused::forbidden(format!("{} may not read WABA {waba_id}", self.describe())))
        }
    }

    pub fn check(&self, allowed: bool, what: &str) -> Result<(), Refused> {
        if allowed {
            Ok(())
        } else {
            Err(Refused::forbidden(format!("{} may not read {what}", self.describe())))
        }
    }

    fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("API token {name:?}"),
            None => "this caller".to_owned(),
        }
    }
}

/// A refused query: 401 (no or unknown token) or 403 (outside the token's scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: StatusCode,
    pub reason: String,
}

impl Refused {
    fn unauthenticated(reason: impl Into<String>) -> Refused {
        Refused { status: StatusCode::UNAUTHORIZED, reason: reason.into() }
    }

    pub fn forbidden(reason: impl Into<String>) -> Refused {
        Refused { status: StatusCode::FORBIDDEN, reason: reason.into() }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.status.canonical_reason().unwrap_or(""), "reason": self.reason });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// States whose routes check API tokens.
pub trait HasAccess {
    fn access(&self) -> &Access;
}

impl<S: HasAccess + Send + Sync> FromRequestParts<Arc<S>> for Caller {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<S>) -> Result<Caller, Refused> {
        let authorization = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
        state.access().authorize(authorization, peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, secret: &str, wabas: Wabas) -> ApiToken {
        ApiToken {
            name: name.into(),
            secret: secret.into(),
            scope: Scope { wabas, dead_letters: false, dead_letter_bodies: false, metrics: false },
        }
    }

    fn loopback() -> Option<SocketAddr> {
        Some("127.0.0.1:40000".parse().expect("addr"))
    }

    fn remote() -> Option<SocketAddr> {
        Some("203.0.113.9:40000".parse().expect("addr"))
    }

    #[test]
    fn without_tokens_only_loopback_is_answered() {
        let access = Access::default();
        assert_eq!(access.authorize(None, loopback()).expect("loopback").scope, Scope::everything());
        let refused = access.authorize(None, remote()).expect_err("remote");
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        // No peer address (not served by the listener): refused, never assumed local.
        assert!(access.authorize(None, None).is_err());
    }

    #[test]
    fn a_token_reads_its_wabas_only_and_loopback_needs_one_too() {
        let only = Wabas::Only(["102290129340398".to_owned()].into());
        let access = Access::new(vec![
            token("finance", "finance-token-0123456789", only),
            token("ops", "ops-token-0123456789abcdef", Wabas::All),
        ])
        .expect("valid");
        assert!(access.authorize(None, loopback()).is_err(), "loopback needs a token once tokens exist");
        assert!(access.authorize(Some("Bearer wrong-token-0123456789"), loopback()).is_err());
        let finance = access.authorize(Some("Bearer finance-token-0123456789"), remote()).expect("known");
        assert!(finance.check_waba("102290129340398").is_ok());
        assert_eq!(finance.check_waba("999").expect_err("other WABA").status, StatusCode::FORBIDDEN);
        assert!(finance.check(finance.scope.dead_letters, "dead letters").is_err());
        let ops = access.authorize(Some("Bearer ops-token-0123456789abcdef"), remote()).expect("known");
        assert!(ops.check_waba("999").is_ok());
    }

    #[test]
    fn weak_shared_or_empty_tokens_refuse_to_start() {
        let weak = Access::new(vec![token("a", "short", Wabas::All)]).expect_err("weak");
        assert!(matches!(weak, AccessError::Weak { .. }), "{weak}");
        let shared = Access::new(vec![
            token("a", "same-token-0123456789", Wabas::All),
            token("b", "same-token-0123456789", Wabas::All),
        ])
        .expect_err("shared");
        assert!(matches!(shared, AccessError::Shared { .. }), "{shared}");
        let empty = Access::new(vec![token("a", "empty-token-0123456789", Wabas::Only(BTreeSet::new()))])
            .expect_err("empty");
        assert!(matches!(empty, AccessError::Empty { .. }), "{empty}");
    }
}
