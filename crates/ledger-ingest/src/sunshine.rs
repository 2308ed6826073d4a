//! Sunshine Conversations (Zendesk) v2 webhooks: `{app, webhook, events: [...]}`.
//!
//! Handled, for the WhatsApp channel only: `conversation:message` from a user (the message's
//! `source.originalMessageId` is the wamid) and the delivery events
//! `conversation:message:delivery:channel` (accepted by WhatsApp: sent), `…:user` (delivered)
//! and `…:failure` (failed), whose `externalMessages[].id` is the wamid. Other channels and other
//! event types are skipped with a reason.
//!
//! Sunshine names neither the WABA nor Meta's phone number id: the WhatsApp integration is the
//! sender (`sunshine:<integrationId>`), the app stands for the account (`sunshine:<app id>`),
//! and the user is Sunshine's user id. Event ids: `sunshine:<event id>`.

use std::borrow::Cow;

use ledger_core::{
    ContactKey, DeliveryStatus, Event, EventKind, InboundMessage, MessageStatus, StatusError, Timestamp,
};
use serde::Deserialize;

use crate::error::{parse_json, IngestError};
use crate::timestamp::rfc3339_seconds;
use crate::{Envelope, Normalized, Provider, Skipped};

const WHATSAPP: &str = "whatsapp";

#[derive(Debug, Deserialize)]
struct Webhook<'a> {
    #[serde(borrow)]
    app: App<'a>,
    #[serde(default, borrow)]
    events: Vec<WebhookEvent<'a>>,
}

#[derive(Debug, Deserialize)]
struct App<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
struct WebhookEvent<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow, rename = "createdAt")]
    created_at: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    payload: Option<Payload<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct Payload<'a> {
    #[serde(default, borrow)]
    message: Option<PayloadMessage<'a>>,
    #[serde(default, borrow)]
    user: Option<User<'a>>,
    #[serde(default, borrow)]
    destination: Option<Channel<'a>>,
    #[serde(default, borrow, rename = "externalMessages")]
    external_messages: Vec<ExternalMessage<'a>>,
    #[serde(default, borrow)]
    error: Option<DeliveryError<'a>>,
}

#[derive(Debug, Deserialize)]
struct PayloadMessage<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    received: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    author: Option<Author<'a>>,
    #[serde(default, borrow)]
    source: Option<Channel<'a>>,
}

#[derive(Debug, Deserialize)]
struct Author<'a> {
    #[serde(default, borrow, rename = "userId")]
    user_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
struct User<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

/// A message's `source` or a delivery's `destination`.
#[derive(Debug, Deserialize)]
struct Channel<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(default, borrow, rename = "integrationId")]
    integration_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "originalMessageId")]
    original_message_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "originalMessageTimestamp")]
    original_message_timestamp: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
struct ExternalMessage<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
struct DeliveryError<'a> {
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
}

/// Normalizes one Sunshine Conversations v2 webhook body.
pub fn normalize(body: &[u8], received_at: Timestamp) -> Result<Normalized, IngestError> {
    let webhook: Webhook<'_> = parse_json(body, &String::new)?;
    let account = format!("sunshine:{}", webhook.app.id);
    let mut out = Normalized::default();
    for (i, event) in webhook.events.iter().enumerate() {
        let path = || format!("events[{i}]");
        let skip = |out: &mut Normalized, reason| out.skipped.push(Skipped { path: path(), reason });
        let payload = event.payload.as_ref();
        let status = match event.kind.as_ref() {
            "conversation:message" => {
                match inbound(&account, event, payload.and_then(|p| p.message.as_ref()), received_at, &path)?
                {
                    Some(normalized) => out.events.push(normalized),
                    None => skip(&mut out, "not a user's message on WhatsApp"),
                }
                continue;
            }
            "conversation:message:delivery:channel" => DeliveryStatus::Sent,
            "conversation:message:delivery:user" => DeliveryStatus::Delivered,
            "conversation:message:delivery:failure" => DeliveryStatus::Failed,
            _ => {
                skip(&mut out, "an event type that carries no message or delivery");
                continue;
            }
        };
        let Some(payload) = payload.filter(|p| p.destination.as_ref().is_some_and(|d| d.kind == WHATSAPP))
        else {
            skip(&mut out, "a delivery to a channel other than WhatsApp");
            continue;
        };
        out.events.push(delivery(&account, event, payload, status, received_at, &path)?);
    }
    Ok(out)
}

fn rfc3339(text: Option<&str>, path: &dyn Fn() -> String, field: &str) -> Result<i64, IngestError> {
    let text = text.ok_or_else(|| IngestError::malformed(format!("{}.{field}", path()), "missing time"))?;
    rfc3339_seconds(text).map_err(|reason| IngestError::malformed(format!("{}.{field}", path()), reason))
}

fn inbound(
    account: &str,
    event: &WebhookEvent<'_>,
    message: Option<&PayloadMessage<'_>>,
    received_at: Timestamp,
    path: &dyn Fn() -> String,
) -> Result<Option<Event>, IngestError> {
    let Some(message) = message else { return Ok(None) };
    let Some(source) = message.source.as_ref().filter(|s| s.kind == WHATSAPP) else { return Ok(None) };
    let Some(author) = message.author.as_ref().filter(|a| a.kind.as_deref() == Some("user")) else {
        return Ok(None);
    };
    let user = author.user_id.as_deref().ok_or_else(|| {
        IngestError::malformed(format!("{}.payload.message.author.userId", path()), "missing")
    })?;
    let sender = integration(source, path)?;
    let message_id = source.original_message_id.as_deref().unwrap_or(&message.id);
    let time = source
        .original_message_timestamp
        .as_deref()
        .or(message.received.as_deref())
        .or(event.created_at.as_deref());
    let at = rfc3339(time, path, "payload.message.source.originalMessageTimestamp")?;
    let kind = EventKind::InboundMessage(InboundMessage { message_id: message_id.into(), entry_point: None });
    Ok(Some(build(event, account, at, received_at, ContactKey::new(&sender, user), kind)))
}

fn delivery(
    account: &str,
    event: &WebhookEvent<'_>,
    payload: &Payload<'_>,
    status: DeliveryStatus,
    received_at: Timestamp,
    path: &dyn Fn() -> String,
) -> Result<Event, IngestError> {
    let destination = payload.destination.as_ref().expect("filtered on a WhatsApp destination");
    let sender = integration(destination, path)?;
    let user = payload
        .user
        .as_ref()
        .map(|u| u.id.as_ref())
        .ok_or_else(|| IngestError::malformed(format!("{}.payload.user.id", path()), "missing"))?;
    // The wamid when WhatsApp returned one, else Sunshine's own message id.
    let message_id = match (payload.external_messages.first(), payload.message.as_ref()) {
        (Some(external), _) => external.id.as_ref(),
        (None, Some(message)) => message.id.as_ref(),
        (None, None) => {
            return Err(IngestError::malformed(format!("{}.payload.message", path()), "no message id"))
        }
    };
    let at = rfc3339(event.created_at.as_deref(), path, "createdAt")?;
    let errors = payload
        .error
        .as_ref()
        .map(|e| StatusError { code: 0, title: e.code.as_deref().unwrap_or_default().to_owned() })
        .into_iter()
        .collect();
    let kind = EventKind::MessageStatus(MessageStatus {
        message_id: message_id.into(),
        status,
        recipient: None,
        participant: None,
        errors,
        reported: None,
    });
    Ok(build(event, account, at, received_at, ContactKey::new(&sender, user), kind))
}

fn integration(channel: &Channel<'_>, path: &dyn Fn() -> String) -> Result<String, IngestError> {
    channel.integration_id.as_deref().map(|id| format!("sunshine:{id}")).ok_or_else(|| {
        IngestError::malformed(format!("{}.payload", path()), "no integrationId for the WhatsApp sender")
    })
}

fn build(
    event: &WebhookEvent<'_>,
    account: &str,
    at: i64,
    received_at: Timestamp,
    contact: ContactKey,
    kind: EventKind,
) -> Event {
    let envelope = Envelope { provider: Provider::Sunshine, received_at };
    envelope.event(format!("sunshine:{}", event.id), at, account, Some(contact), kind)
}
