//! Webhook bodies into the log: authenticity, normalization, validation, durable append.
//! Shared by the HTTP API and `ledger import`.

use ledger_core::{Event, Timestamp};
use ledger_ingest::{Limits, Provider};
use ledger_log::{Appended, LogRecord};
use ledger_store::{DeadLetter, Store};
use prost::Message;
use serde::Serialize;

/// Secrets that authenticate webhooks; a provider without one is accepted unauthenticated.
#[derive(Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// Meta app secret: `X-Hub-Signature-256` is required when set.
    pub meta_app_secret: Option<String>,
    /// The token Meta's verification handshake (GET) must present.
    pub meta_verify_token: Option<String>,
    /// Sinch webhook secret: `x-sinch-webhook-signature` is required when set.
    pub sinch_secret: Option<String>,
    /// Sunshine Conversations webhook key: `X-API-Key` is required when set.
    pub sunshine_api_key: Option<String>,
    /// Gupshup has no signature; a shared key in `X-API-Key` is required when set.
    pub gupshup_api_key: Option<String>,
    /// The bearer token `POST /v1/sends` requires (`Authorization: Bearer …`) when set; a server
    /// bound beyond loopback refuses to start without one.
    pub sends_token: Option<String>,
    /// How far a signed Sinch timestamp may be from this server's clock, in seconds (default
    /// [`ledger_ingest::signature::SINCH_TIMESTAMP_WINDOW_SECONDS`]).
    pub sinch_timestamp_window_seconds: Option<u64>,
    /// Providers whose routes relay Meta's own webhook format (Gupshup v3). Only these take
    /// Meta-format bodies besides `meta_cloud`, and each needs its own secret configured: a
    /// Meta-format body names Meta's ids, so an unauthenticated route taking one could forge
    /// or pre-empt events of the Meta-signed route.
    #[serde(default)]
    pub meta_format_relays: Vec<String>,
}

/// The shortest secret the server starts with: an HMAC key or shared token under 128 bits can be
/// guessed, and an empty one signs anything (a signature made with the empty key verified).
pub const SECRET_BYTES_MIN: usize = 16;

/// A configured secret the server refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} is {length} bytes long: a configured secret needs at least {SECRET_BYTES_MIN} (leave it unset to accept unsigned webhooks)")]
pub struct WeakSecret {
    pub name: &'static str,
    pub length: usize,
}

/// Secrets the server refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    Weak(#[from] WeakSecret),
    #[error("{0}")]
    Relay(String),
}

impl Secrets {
    /// Every configured secret is long enough (whitespace around it does not count).
    pub fn validate(&self) -> Result<(), SecretsError> {
        for (name, secret) in [
            ("meta_app_secret", &self.meta_app_secret),
            ("meta_verify_token", &self.meta_verify_token),
            ("sinch_secret", &self.sinch_secret),
            ("sunshine_api_key", &self.sunshine_api_key),
            ("gupshup_api_key", &self.gupshup_api_key),
            ("sends_token", &self.sends_token),
        ] {
            if let Some(secret) = secret {
                let length = secret.trim().len();
                if length < SECRET_BYTES_MIN {
                    return Err(WeakSecret { name, length }.into());
                }
            }
        }
        for relay in &self.meta_format_relays {
            let secret = match relay.parse::<Provider>() {
                Ok(Provider::Gupshup) => &self.gupshup_api_key,
                Ok(Provider::Sinch) => &self.sinch_secret,
                Ok(Provider::Sunshine) => &self.sunshine_api_key,
                _ => {
                    return Err(SecretsError::Relay(format!(
                        "meta_format_relays names {relay:?}: only gupshup, sinch or sunshine routes relay"
                    )))
                }
            };
            if secret.is_none() {
                return Err(SecretsError::Relay(format!(
                    "meta_format_relays names {relay}, whose secret is not set: a route relays Meta's \
                     format only when it authenticates"
                )));
            }
        }
        Ok(())
    }

    fn relays_meta_format(&self, provider: Provider) -> bool {
        self.meta_format_relays.iter().any(|relay| relay == provider.as_str())
    }
}

/// A body is taken only in its route's format: Meta's webhook format through `meta_cloud`, or
/// through a route configured to relay it (`meta_format_relays`, authenticated).
pub fn check_route_format(provider: Provider, secrets: &Secrets, body: &[u8]) -> Result<(), String> {
    if matches!(provider, Provider::MetaCloud | Provider::SendRecords) || !ledger_ingest::is_meta_format(body)
    {
        return Ok(());
    }
    if secrets.relays_meta_format(provider) {
        return Ok(());
    }
    Err(format!(
        "a Meta-format webhook on the {0} route: Meta's events are taken on /v1/webhooks/meta_cloud, \
         or here only when {0} is listed in meta_format_relays (with its secret set)",
        provider.as_str()
    ))
}

impl std::fmt::Debug for Secrets {
    // Never print a secret: only whether each is configured.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |s: &Option<String>| if s.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("Secrets")
            .field("meta_app_secret", &set(&self.meta_app_secret))
            .field("meta_verify_token", &set(&self.meta_verify_token))
            .field("sinch_secret", &set(&self.sinch_secret))
            .field("sunshine_api_key", &set(&self.sunshine_api_key))
            .field("gupshup_api_key", &set(&self.gupshup_api_key))
            .field("sends_token", &set(&self.sends_token))
            .field("sinch_timestamp_window_seconds", &self.sinch_timestamp_window_seconds)
            .field("meta_format_relays", &self.meta_format_relays)
            .finish()
    }
}

/// The headers authentication reads, by lower-case name.
pub trait HeaderLookup {
    fn header(&self, name: &str) -> Option<&str>;
}

impl HeaderLookup for axum::http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Checks the body against the provider's configured secret.
pub fn authenticate(
    provider: Provider,
    secrets: &Secrets,
    headers: &dyn HeaderLookup,
    body: &[u8],
    now: Timestamp,
) -> Result<(), String> {
    use ledger_ingest::signature as sig;
    let result = match provider {
        Provider::MetaCloud => match &secrets.meta_app_secret {
            Some(secret) => {
                sig::verify_meta_signature(secret.as_bytes(), body, headers.header("x-hub-signature-256"))
            }
            None => Ok(()),
        },
        Provider::Sinch => match &secrets.sinch_secret {
            Some(secret) => {
                let timestamp = headers.header("x-sinch-webhook-signature-timestamp");
                sig::verify_sinch_signature(
                    secret.as_bytes(),
                    body,
                    &sig::SinchSignature {
                        signature: headers.header("x-sinch-webhook-signature"),
                        nonce: headers.header("x-sinch-webhook-signature-nonce"),
                        timestamp,
                        algorithm: headers.header("x-sinch-webhook-signature-algorithm"),
                    },
                )
                .and_then(|()| {
                    let window =
                        secrets.sinch_timestamp_window_seconds.unwrap_or(sig::SINCH_TIMESTAMP_WINDOW_SECONDS);
                    sig::check_sinch_timestamp(timestamp, now.0, window)
                })
            }
            None => Ok(()),
        },
        Provider::Sunshine => match &secrets.sunshine_api_key {
            Some(key) => sig::verify_shared_secret(key, headers.header("x-api-key")),
            None => Ok(()),
        },
        Provider::Gupshup => match &secrets.gupshup_api_key {
            Some(key) => sig::verify_shared_secret(key, headers.header("x-api-key")),
            None => Ok(()),
        },
        // The business's own records change how deliveries are classified: only its sender may
        // post them.
        Provider::SendRecords => match &secrets.sends_token {
            Some(token) => {
                let given =
                    headers.header("authorization").map(|h| h.trim().strip_prefix("Bearer ").unwrap_or(""));
                sig::verify_shared_secret(token, given)
            }
            None => Ok(()),
        },
    };
    result.map_err(|e| format!("{} webhook authentication failed: {e}", provider.as_str()))
}

/// Why a body was refused, with the HTTP status it is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

/// What an accepted body became.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Accepted {
    pub events: usize,
    /// Newly appended to the log.
    pub new: usize,
    /// Already in the log (a re-delivery).
    pub duplicates: usize,
    /// Not appended: the log holds another event with the same id (answered 409).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    /// Parts deliberately not turned into events, with why.
    pub skipped: Vec<SkippedView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedView {
    pub path: String,
    pub reason: &'static str,
}

/// The log record of an event. The dedupe key covers the event id and content but not the
/// receive time, so a provider's retry of the same webhook is recognised as a duplicate.
pub fn record_of(event: &Event) -> LogRecord {
    let mut proto = ledger_proto::v1::Event::from(event);
    let receive_time = std::mem::take(&mut proto.receive_time);
    let dedupe = xxhash_rust::xxh3::xxh3_128(&proto.encode_to_vec()).to_be_bytes();
    proto.receive_time = receive_time;
    LogRecord {
        key: partition_key(event).into_bytes(),
        dedupe,
        identity: Some(xxhash_rust::xxh3::xxh3_128(event.event_id.as_str().as_bytes()).to_be_bytes()),
        payload: proto.encode_to_vec(),
        // Account settings shape every contact's fold: each partition's projector needs them.
        broadcast: event.contact.is_none(),
    }
}

/// The log's partitioning key: the contact (phone number id / user id), or the WABA id for
/// account-wide events. A contact's events share one partition and keep their order there.
pub fn partition_key(event: &Event) -> String {
    match &event.contact {
        Some(contact) => contact_partition_key(&contact.phone_number_id, &contact.user_id),
        None => event.waba_id.to_string(),
    }
}

/// A contact's partitioning key, for the producer and for finding a contact's partition alike.
pub fn contact_partition_key(phone_number_id: &str, user_id: &str) -> String {
    format!("{phone_number_id}/{user_id}")
}

/// Normalizes and validates a body into log records, or says why it is refused (4xx).
pub fn prepare(
    provider: Provider,
    body: &[u8],
    received_at: Timestamp,
    limits: &Limits,
) -> Result<(Vec<LogRecord>, Vec<EventIdOf>, Accepted), Refusal> {
    let normalized = ledger_ingest::normalize(provider, body, received_at, limits).map_err(|error| {
        let status = match error {
            ledger_ingest::IngestError::TooLarge { .. } => 413,
            ledger_ingest::IngestError::UnknownProvider(_) => 404,
            _ => 400,
        };
        Refusal { status, reason: error.to_string() }
    })?;
    let mut records = Vec::with_capacity(normalized.events.len());
    let mut ids = Vec::with_capacity(normalized.events.len());
    for event in &normalized.events {
        ids.push(EventIdOf(event.event_id.to_string()));
        event.validate().map_err(|error| Refusal {
            status: 422,
            reason: format!("event {} is not valid: {error}", event.event_id),
        })?;
        records.push(record_of(event));
    }
    let accepted = Accepted {
        events: records.len(),
        skipped: normalized
            .skipped
            .into_iter()
            .map(|s| SkippedView { path: s.path, reason: s.reason })
            .collect(),
        ..Accepted::default()
    };
    Ok((records, ids, accepted))
}

/// Counts the log's answers to `records` into `accepted`.
pub fn tally(accepted: &mut Accepted, records: &[EventIdOf], answers: &[Appended]) {
    for (record, answer) in records.iter().zip(answers) {
        match answer {
            Appended::New(_) => accepted.new += 1,
            Appended::Duplicate(_) => accepted.duplicates += 1,
            Appended::Conflict(offset) => {
                accepted.conflicts.push(format!("{} (log offset {offset} holds other content)", record.0))
            }
        }
    }
}

/// The event id of an offered record, kept to name it in a conflict.
#[derive(Debug, Clone)]
pub struct EventIdOf(pub String);

/// Keeps refused input with its reason. The refusal is answered only after this returns.
/// A body refused for its authenticity (401) is not kept, only that it came: it is a forger's
/// or a misconfigured sender's, and holds nothing the ledger may act on.
pub fn keep_refused(
    store: &Store,
    source: &str,
    refusal: &Refusal,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), ledger_store::StoreError> {
    let mut letter = DeadLetter::new(source, refusal.status, refusal.reason.clone(), content_type, body);
    if refusal.status == 401 {
        letter = letter.withholding_body("not kept: refused for its authenticity");
    }
    let dropped = store.put_dead_letter(&letter)?;
    if dropped > 0 {
        metrics::counter!("ledger_dead_letters_dropped_total").increment(dropped as u64);
    }
    Ok(())
}

pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub fn now() -> Timestamp {
    Timestamp(now_micros().div_euclid(1_000_000))
}
