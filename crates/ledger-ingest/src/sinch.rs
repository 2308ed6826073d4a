//! Sinch Conversation API callbacks.
//!
//! Handled: `message` (MESSAGE_INBOUND, direction `TO_APP`) with the Click-to-WhatsApp `referral`
//! that Sinch carries as a JSON string inside `metadata`, and `message_delivery_report`
//! (MESSAGE_DELIVERY: QUEUED_ON_CHANNEL → sent, DELIVERED, READ, FAILED with its reason).
//! Only the WHATSAPP channel is folded; other channels and other triggers are skipped with a
//! reason.
//!
//! Sinch callbacks name neither the WABA nor Meta's phone number id: the Sinch app is the
//! business sender, so both default to `sinch:<app_id>` (a deployment can map app ids to WABAs).
//! Message ids are Sinch's own (send records for Sinch traffic must use them).
//! Event ids: `sinch:msg:<message id>`, `sinch:status:<message id>:<status>`.

use std::borrow::Cow;

use ledger_core::{
    ContactKey, DeliveryStatus, EntryPoint, EventKind, InboundMessage, MessageStatus, StatusError, Timestamp,
};
use serde::Deserialize;

use crate::error::{parse_json, IngestError};
use crate::timestamp::rfc3339_seconds;
use crate::{Envelope, Normalized, Provider, Skipped};

#[derive(Debug, Deserialize)]
struct Callback<'a> {
    /// `whatsapp` on callbacks of Sinch's standalone WhatsApp API (retired 2023-09-30).
    #[serde(default, borrow, rename = "type")]
    legacy_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    app_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    accepted_time: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    event_time: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    message: Option<Message<'a>>,
    #[serde(default, borrow)]
    message_delivery_report: Option<DeliveryReport<'a>>,
}

#[derive(Debug, Deserialize)]
struct ChannelIdentity<'a> {
    #[serde(borrow)]
    channel: Cow<'a, str>,
    #[serde(borrow)]
    identity: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    direction: Option<Cow<'a, str>>,
    #[serde(borrow)]
    channel_identity: ChannelIdentity<'a>,
    #[serde(default, borrow)]
    metadata: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    accept_time: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
struct DeliveryReport<'a> {
    #[serde(borrow)]
    message_id: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    channel_identity: ChannelIdentity<'a>,
    #[serde(default, borrow)]
    reason: Option<Reason<'a>>,
}

#[derive(Debug, Deserialize)]
struct Reason<'a> {
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
}

/// The `referral` Sinch forwards inside the message's `metadata` string.
#[derive(Debug, Deserialize)]
struct MetadataWithReferral {
    #[serde(default)]
    referral: Option<Referral>,
}

#[derive(Debug, Deserialize)]
struct Referral {
    #[serde(default)]
    source_id: Option<String>,
    #[serde(default)]
    source_url: Option<String>,
    #[serde(default)]
    source_type: Option<String>,
    #[serde(default)]
    ctwa_clid: Option<String>,
    #[serde(default)]
    headline: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    video_url: Option<String>,
}

/// Normalizes one Conversation API callback body.
pub fn normalize(body: &[u8], received_at: Timestamp) -> Result<Normalized, IngestError> {
    let callback: Callback<'_> = parse_json(body, &String::new)?;
    let mut out = Normalized::default();
    if callback.legacy_type.as_deref() == Some("whatsapp") {
        let reason = "Sinch's standalone WhatsApp API (retired 2023-09-30): its callbacks do not name the business sender";
        out.skipped.push(Skipped { path: "type".into(), reason });
        return Ok(out);
    }
    let app = callback.app_id.as_deref().filter(|a| !a.is_empty());
    let sender = || -> Result<String, IngestError> {
        app.map(|a| format!("sinch:{a}"))
            .ok_or_else(|| IngestError::malformed("app_id", "missing: Sinch names the sender by its app"))
    };
    let callback_time = callback.event_time.as_deref().or(callback.accepted_time.as_deref());

    if let Some(message) = &callback.message {
        if message.channel_identity.channel != "WHATSAPP" {
            out.skipped.push(Skipped {
                path: "message.channel_identity.channel".into(),
                reason: "not the WhatsApp channel",
            });
        } else if message.direction.as_deref().is_some_and(|d| d != "TO_APP") {
            out.skipped.push(Skipped {
                path: "message.direction".into(),
                reason: "a business message echo, not a user message",
            });
        } else {
            let at = iso_seconds(message.accept_time.as_deref().or(callback_time), "message.accept_time")?;
            let entry_point = referral(message.metadata.as_deref());
            let kind = EventKind::InboundMessage(InboundMessage {
                message_id: message.id.as_ref().into(),
                entry_point,
            });
            let user = identity(&message.channel_identity.identity, "message.channel_identity.identity")?;
            let sender = sender()?;
            out.events.push(Envelope { provider: Provider::Sinch, received_at }.event(
                format!("sinch:msg:{}", message.id),
                at,
                &sender,
                Some(ContactKey::new(&sender, user)),
                kind,
            ));
        }
    }
    if let Some(report) = &callback.message_delivery_report {
        if report.channel_identity.channel != "WHATSAPP" {
            out.skipped.push(Skipped {
                path: "message_delivery_report.channel_identity.channel".into(),
                reason: "not the WhatsApp channel",
            });
        } else {
            match delivery_status(&report.status) {
                None => out.skipped.push(Skipped {
                    path: "message_delivery_report.status".into(),
                    reason: "a status that says nothing about delivery to the user",
                }),
                Some(status) => {
                    let at = iso_seconds(callback_time, "event_time")?;
                    let user = identity(
                        &report.channel_identity.identity,
                        "message_delivery_report.channel_identity.identity",
                    )?;
                    let errors = report
                        .reason
                        .as_ref()
                        .filter(|_| status == DeliveryStatus::Failed)
                        .map(|r| StatusError {
                            code: 0,
                            title: r.code.as_deref().unwrap_or_default().to_owned(),
                        })
                        .into_iter()
                        .collect();
                    let kind = EventKind::MessageStatus(MessageStatus {
                        message_id: report.message_id.as_ref().into(),
                        status,
                        recipient: Some(user.into()),
                        participant: None,
                        errors,
                        reported: None,
                    });
                    let id =
                        format!("sinch:status:{}:{}", report.message_id, report.status.to_ascii_lowercase());
                    let sender = sender()?;
                    out.events.push(Envelope { provider: Provider::Sinch, received_at }.event(
                        id,
                        at,
                        &sender,
                        Some(ContactKey::new(&sender, user)),
                        kind,
                    ));
                }
            }
        }
    }
    if callback.message.is_none() && callback.message_delivery_report.is_none() {
        out.skipped.push(Skipped {
            path: ".".into(),
            reason: "a Sinch trigger other than MESSAGE_INBOUND or MESSAGE_DELIVERY",
        });
    }
    Ok(out)
}

fn delivery_status(status: &str) -> Option<DeliveryStatus> {
    match status {
        "QUEUED_ON_CHANNEL" => Some(DeliveryStatus::Sent),
        "DELIVERED" => Some(DeliveryStatus::Delivered),
        "READ" => Some(DeliveryStatus::Read),
        "FAILED" => Some(DeliveryStatus::Failed),
        _ => None,
    }
}

/// The user's number as Meta's `wa_id` writes it: digits, no leading `+`.
fn identity<'a>(raw: &'a str, path: &str) -> Result<&'a str, IngestError> {
    let number = raw.trim().trim_start_matches('+');
    if number.is_empty() {
        return Err(IngestError::malformed(path, "empty identity"));
    }
    Ok(number)
}

fn iso_seconds(value: Option<&str>, path: &str) -> Result<i64, IngestError> {
    let text =
        value.ok_or_else(|| IngestError::malformed(path, "no event time (event_time, accepted_time)"))?;
    rfc3339_seconds(text).map_err(|reason| IngestError::malformed(path, reason))
}

/// A Click-to-WhatsApp referral forwarded in `metadata` (a JSON string); anything else there is
/// the business's own metadata and is ignored.
fn referral(metadata: Option<&str>) -> Option<EntryPoint> {
    let text = metadata.filter(|m| m.trim_start().starts_with('{'))?;
    let referral = serde_json::from_str::<MetadataWithReferral>(text).ok()?.referral?;
    Some(EntryPoint {
        source_id: referral.source_id,
        source_url: referral.source_url,
        source_type: referral.source_type,
        ctwa_clid: referral.ctwa_clid,
        headline: referral.headline,
        body: referral.body,
        media_type: referral.media_type,
        media_url: referral.image_url.or(referral.video_url),
    })
}
