//! Provider webhooks in, normalized ledger events out.
//!
//! Pure: bytes and the receive instant in, events (or a typed error that names the JSON path)
//! out; no IO, no clock. One module per provider. Event ids derive from the provider's own
//! identifiers, so a re-delivered webhook yields the same ids (ARCHITECTURE decision 4).
//! Parts of a payload that carry nothing the ledger folds are reported as [`Skipped`] with a
//! reason, never silently dropped.

mod error;
pub mod gupshup;
mod limits;
pub mod meta;
pub mod sends;
pub mod signature;
pub mod sinch;
pub mod sunshine;
mod timestamp;

use ledger_core::{ContactKey, Event, EventKind, Timestamp, SCHEMA_VERSION};

pub use error::IngestError;
pub use limits::Limits;

/// The webhook formats the ledger understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Meta's WhatsApp Cloud API (`object: whatsapp_business_account`).
    MetaCloud,
    /// Sinch Conversation API callbacks (`MESSAGE_INBOUND`, `MESSAGE_DELIVERY`).
    Sinch,
    /// Sunshine Conversations (Zendesk) v2 webhooks.
    Sunshine,
    /// Gupshup: v3 (Meta's format relayed) and v2 (`message-event`, `billing-event`).
    Gupshup,
    /// The business's own send records (`docs/send-records.md`).
    SendRecords,
}

impl Provider {
    pub const ALL: &'static [Provider] =
        &[Provider::MetaCloud, Provider::Sinch, Provider::Sunshine, Provider::Gupshup];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::MetaCloud => "meta_cloud",
            Provider::Sinch => "sinch",
            Provider::Sunshine => "sunshine",
            Provider::Gupshup => "gupshup",
            Provider::SendRecords => "send_records",
        }
    }
}

impl std::str::FromStr for Provider {
    type Err = IngestError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "meta_cloud" | "meta" => Ok(Provider::MetaCloud),
            "sinch" => Ok(Provider::Sinch),
            "sunshine" | "sunshine_conversations" => Ok(Provider::Sunshine),
            "gupshup" => Ok(Provider::Gupshup),
            "send_records" | "sends" => Ok(Provider::SendRecords),
            other => Err(IngestError::UnknownProvider(other.to_owned())),
        }
    }
}

/// What every event of one body shares: the provider that delivered it and when it arrived.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Envelope {
    pub provider: Provider,
    pub received_at: Timestamp,
}

impl Envelope {
    /// An event with the provider-derived `id`, that happened `at` (Unix seconds).
    pub fn event(
        &self,
        id: String,
        at: i64,
        waba_id: &str,
        contact: Option<ContactKey>,
        kind: EventKind,
    ) -> Event {
        Event {
            event_id: id.into(),
            schema_version: SCHEMA_VERSION,
            event_time: Timestamp(at),
            receive_time: self.received_at,
            provider: self.provider.as_str().to_owned(),
            waba_id: waba_id.into(),
            contact,
            kind,
        }
    }
}

/// What one webhook body normalizes to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Normalized {
    pub events: Vec<Event>,
    /// Parts deliberately not turned into events, with where they are and why.
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// JSON path of the skipped part, e.g. `entry[0].changes[1]`.
    pub path: String,
    pub reason: &'static str,
}

/// Whether a body is in Meta's webhook format (`{"object": …, "entry": […]}`), whichever route
/// it came on: such a body names Meta's own ids.
pub fn is_meta_format(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        object: Option<serde::de::IgnoredAny>,
        entry: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(body).is_ok_and(|probe| probe.object.is_some() || probe.entry.is_some())
}

/// Normalizes one webhook body received at `received_at`.
pub fn normalize(
    provider: Provider,
    body: &[u8],
    received_at: Timestamp,
    limits: &Limits,
) -> Result<Normalized, IngestError> {
    limits.check_body(body)?;
    let normalized = match provider {
        Provider::MetaCloud => meta::normalize(body, received_at)?,
        Provider::Sinch => sinch::normalize(body, received_at)?,
        Provider::Sunshine => sunshine::normalize(body, received_at)?,
        Provider::Gupshup => gupshup::normalize(body, received_at)?,
        Provider::SendRecords => sends::normalize(body, received_at)?,
    };
    limits.check_events(normalized.events.len())?;
    Ok(normalized)
}
