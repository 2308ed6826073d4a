//! Gupshup webhooks.
//!
//! - v3 events are Meta's Cloud API payloads relayed with extra `gs_*` fields: parsed by the Meta
//!   adapter, labelled `gupshup`, ids kept Meta's.
//! - v2 `message-event` (enqueued/sent/delivered/read/failed of a message, with CBP
//!   `conversation` and `pricing` where Gupshup forwards them).
//! - v2 `billing-event` (a deduction for a message): the provider's pricing for it, as a
//!   `pricing_report` event (kept for reconciliation; used by the fold only where no status
//!   reports pricing). Other v2 types carry no delivery and are skipped with a reason.
//!
//! v2 events name the Gupshup app, not the WABA or Meta's phone number id: both default to
//! `gupshup:<app>`. Event ids: `gupshup:status:<message id>:<status>`,
//! `gupshup:billing:<message id>`.

use std::borrow::Cow;

use ledger_core::{
    ContactKey, DeliveryStatus, Event, EventKind, MessageStatus, PricingModel, PricingReport, PricingType,
    ReportedCategory, ReportedPricing, Timestamp,
};
use serde::Deserialize;

use crate::error::{parse_json, IngestError};
use crate::timestamp::UnixSeconds;
use crate::{meta, Envelope, Normalized, Provider, Skipped};

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
    /// Parsed by `type`.
    #[serde(default, borrow)]
    payload: Option<&'a serde_json::value::RawValue>,
}

#[derive(Debug, Deserialize)]
struct BillingEvent<'a> {
    #[serde(borrow)]
    deductions: Deductions<'a>,
    #[serde(borrow)]
    references: References<'a>,
}

#[derive(Debug, Deserialize)]
struct Deductions<'a> {
    #[serde(default, borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(default)]
    billable: Option<bool>,
    #[serde(default, borrow)]
    category: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
struct References<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow, rename = "conversationId")]
    conversation_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    destination: Cow<'a, str>,
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
        return meta::normalize_as(Provider::Gupshup, body, received_at);
    }
    let event: V2<'_> = parse_json(body, &String::new)?;
    let mut out = Normalized::default();
    let sender = format!("gupshup:{}", event.app);
    let at = event.timestamp.div_euclid(1_000);
    match event.kind.as_ref() {
        "message-event" => {}
        "billing-event" => {
            let raw = event.payload.ok_or_else(|| IngestError::malformed("payload", "missing"))?;
            let billing: BillingEvent<'_> = parse_payload(raw)?;
            if billing.deductions.source.as_deref().is_some_and(|s| s != "whatsapp") {
                out.skipped
                    .push(Skipped { path: "payload.deductions.source".into(), reason: "not WhatsApp" });
                return Ok(out);
            }
            out.events.push(billing_event(&billing, &sender, at, received_at)?);
            return Ok(out);
        }
        _ => {
            out.skipped.push(Skipped {
                path: "type".into(),
                reason: "a v2 event type that carries no message delivery",
            });
            return Ok(out);
        }
    }
    let raw = event.payload.ok_or_else(|| IngestError::malformed("payload", "missing"))?;
    let message: MessageEvent<'_> = parse_payload(raw)?;
    let message = &message;
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
    let at = message.payload.as_ref().and_then(|p| p.ts).map_or(at, |t| t.0);
    let reported = reported(message);
    let kind = EventKind::MessageStatus(MessageStatus {
        message_id: id.into(),
        status,
        recipient: Some(user.into()),
        participant: None,
        errors: Vec::new(),
        reported,
    });
    let name = message.kind.as_deref().unwrap_or_default();
    let envelope = Envelope { provider: Provider::Gupshup, received_at };
    let id = format!("gupshup:status:{id}:{name}");
    out.events.push(envelope.event(id, at, &sender, Some(ContactKey::new(&sender, user)), kind));
    Ok(out)
}

fn parse_payload<'a, T: Deserialize<'a>>(raw: &'a serde_json::value::RawValue) -> Result<T, IngestError> {
    parse_json(raw.get().as_bytes(), &|| "payload".to_owned())
}

/// A deduction: `type` is the pricing type (`regular` …) or, in CBP examples, the category
/// (`marketing_lite`).
fn billing_event(
    billing: &BillingEvent<'_>,
    sender: &str,
    at: i64,
    received_at: Timestamp,
) -> Result<Event, IngestError> {
    let d = &billing.deductions;
    let r = &billing.references;
    if r.id.is_empty() {
        return Err(IngestError::malformed("payload.references.id", "empty message id"));
    }
    let user = r.destination.trim_start_matches('+');
    if user.is_empty() {
        return Err(IngestError::malformed("payload.references.destination", "empty destination"));
    }
    let pricing_type = d.kind.as_deref().and_then(PricingType::parse);
    let category = d
        .category
        .as_deref()
        .or(d.kind.as_deref().filter(|_| pricing_type.is_none()))
        .map(ReportedCategory::parse);
    let reported = ReportedPricing {
        pricing_model: d.model.as_deref().and_then(PricingModel::parse),
        category,
        pricing_type,
        billable: d.billable,
        conversation_id: r.conversation_id.as_deref().map(str::to_owned),
        conversation_origin: None,
        conversation_expires_at: None,
        cost: None,
    };
    let kind = EventKind::PricingReport(PricingReport { message_id: r.id.as_ref().into(), reported });
    let envelope = Envelope { provider: Provider::Gupshup, received_at };
    Ok(envelope.event(
        format!("gupshup:billing:{}", r.id),
        at,
        sender,
        Some(ContactKey::new(sender, user)),
        kind,
    ))
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
        cost: None,
    })
}
