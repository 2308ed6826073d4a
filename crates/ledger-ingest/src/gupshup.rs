//! Gupshup webhooks.
//!
//! - v3 events are Meta's Cloud API payloads relayed with extra `gs_*` fields: parsed by the Meta
//!   adapter, labelled `gupshup`, ids kept Meta's.
//! - v2 `message-event` (enqueued/sent/delivered/read/failed of a message, with CBP
//!   `conversation` and `pricing` where Gupshup forwards them).
//! - v2 `billing-event` (a deduction for a message) is the provider's charge, input to
//!   reconciliation, not a delivery: skipped with that reason; other v2 types likewise.
//!
//! v2 events name the Gupshup app, not the WABA or Meta's phone number id: both default to
//! `gupshup:<app>`. Event ids: `gupshup:status:<message id>:<status>`.

use std::borrow::Cow;

use ledger_core::{
    ContactKey, DeliveryStatus, Event, EventKind, MessageStatus, PricingModel, ReportedCategory,
    ReportedPricing, Timestamp, SCHEMA_VERSION,
};
use serde::Deserialize;

use crate::error::IngestError;
use crate::timestamp::UnixSeconds;
use crate::{meta, Normalized, Skipped};

pub const PROVIDER: &str = "gupshup";

#[derive(Debug, Deserialize)]
struct Probe<'a> {
    #[serde(default, borrow)]
    object: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
struct V2<'a> {
    #[serde(borrow)]
    app: Cow<'a, str>,
    /// Milliseconds since the epoch.
    timestamp: i64,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    payload: Option<MessageEvent<'a>>,
}

#[derive(Debug, Deserialize)]
struct MessageEvent<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    destination: Option<Cow<'a, str>>,
    #[serde(default)]
    payload: Option<InnerPayload>,
    #[serde(default, borrow)]
    conversation: Option<Conversation<'a>>,
    #[serde(default, borrow)]
    pricing: Option<Pricing<'a>>,
}

#[derive(Debug, Deserialize)]
struct InnerPayload {
    /// Seconds; the event's own time when present.
    #[serde(default)]
    ts: Option<UnixSeconds>,
}

#[derive(Debug, Deserialize)]
struct Conversation<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, rename = "expiresAt")]
    expires_at: Option<UnixSeconds>,
    #[serde(default, borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
struct Pricing<'a> {
    #[serde(default, borrow)]
    policy: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    category: Option<Cow<'a, str>>,
}

/// Normalizes one Gupshup webhook body (v3 or v2).
pub fn normalize(body: &[u8], received_at: Timestamp) -> Result<Normalized, IngestError> {
    let probe: Probe<'_> =
        serde_json::from_slice(body).map_err(|e| IngestError::malformed(".", e.to_string()))?;
    if probe.object.is_some() {
        return meta::normalize_as(PROVIDER, body, received_at);
    }
    let event: V2<'_> = serde_json::from_slice(body).or_else(|_| {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| IngestError::from_serde("", e))
    })?;
    let mut out = Normalized::default();
    if event.kind != "message-event" {
        let reason = match event.kind.as_ref() {
            "billing-event" => {
                "billing-event: the provider's charge for a message, input to reconciliation, not a delivery"
            }
            _ => "a v2 event type that carries no message delivery",
        };
        out.skipped.push(Skipped { path: "type".into(), reason });
        return Ok(out);
    }
    let message = event.payload.as_ref().ok_or_else(|| IngestError::malformed("payload", "missing"))?;
    let status = match message.kind.as_deref() {
        Some("enqueued") | Some("sent") => DeliveryStatus::Sent,
        Some("delivered") => DeliveryStatus::Delivered,
        Some("read") => DeliveryStatus::Read,
        Some("failed") => DeliveryStatus::Failed,
        _ => {
            out.skipped.push(Skipped {
                path: "payload.type".into(),
                reason: "a message-event that is not a delivery status",
            });
            return Ok(out);
        }
    };
    let id = message
        .id
        .as_deref()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| IngestError::malformed("payload.id", "missing"))?;
    let user = message
        .destination
        .as_deref()
        .map(|d| d.trim_start_matches('+'))
        .filter(|d| !d.is_empty())
        .ok_or_else(|| IngestError::malformed("payload.destination", "missing"))?;
    let at = message.payload.as_ref().and_then(|p| p.ts).map_or(event.timestamp.div_euclid(1_000), |t| t.0);
    let sender = format!("gupshup:{}", event.app);
    let reported = reported(message);
    let kind = EventKind::MessageStatus(MessageStatus {
        message_id: id.into(),
        status,
        recipient: Some(user.into()),
        errors: Vec::new(),
        reported,
    });
    let name = message.kind.as_deref().unwrap_or_default();
    out.events.push(Event {
        event_id: format!("gupshup:status:{id}:{name}").into(),
        schema_version: SCHEMA_VERSION,
        event_time: Timestamp(at),
        receive_time: received_at,
        provider: PROVIDER.to_owned(),
        waba_id: sender.as_str().into(),
        contact: Some(ContactKey::new(&sender, user)),
        kind,
    });
    Ok(out)
}

/// Gupshup's CBP shorthands: FEP (free entry point), UIC / BIC (user- / business-initiated).
fn category(text: &str) -> ReportedCategory {
    match text {
        "FEP" => ReportedCategory::ReferralConversion,
        "UIC" => ReportedCategory::UserInitiated,
        "BIC" => ReportedCategory::BusinessInitiated,
        other => ReportedCategory::parse(other),
    }
}

fn reported(message: &MessageEvent<'_>) -> Option<ReportedPricing> {
    if message.conversation.is_none() && message.pricing.is_none() {
        return None;
    }
    let conversation = message.conversation.as_ref();
    let pricing = message.pricing.as_ref();
    Some(ReportedPricing {
        pricing_model: pricing.and_then(|p| p.policy.as_deref()).and_then(PricingModel::parse),
        category: pricing.and_then(|p| p.category.as_deref()).map(category),
        pricing_type: None,
        billable: None,
        conversation_id: conversation.and_then(|c| c.id.as_deref()).map(str::to_owned),
        conversation_origin: conversation.and_then(|c| c.kind.as_deref()).map(category),
        conversation_expires_at: conversation.and_then(|c| c.expires_at).map(|t| Timestamp(t.0)),
    })
}
