//! The business's own send records (`docs/send-records.md`): what it sent, to whom, as which
//! template. They classify deliveries whose webhooks carry no pricing (R8: the category at
//! time of use), and are authoritative over what providers report.
//!
//! Our own format, so it is strict: unknown fields are errors. One record or an array of them.
//! Event id: `send:<message id>`.

use std::sync::Arc;

use ledger_core::{
    ContactKey, Event, EventKind, SendContent, SendRecord, TemplateCategory, TemplateUse, Timestamp,
};
use serde::Deserialize;

use crate::error::IngestError;
use crate::timestamp::rfc3339_seconds;
use crate::{Envelope, Normalized, Provider};

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Body {
    Many(Vec<Record>),
    One(Box<Record>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    message_id: String,
    waba_id: String,
    phone_number_id: String,
    /// The recipient's phone number (digits, `+` optional).
    recipient: String,
    /// The user id webhooks use for this recipient, when it is not the phone number (a
    /// business-scoped user id).
    #[serde(default)]
    user_id: Option<String>,
    /// Unix seconds, or an RFC 3339 time.
    sent_at: SentAt,
    #[serde(default)]
    template: Option<Template>,
    /// The message type of a free-form send (`text`, `image`, `interactive` …).
    #[serde(default)]
    non_template: Option<String>,
    #[serde(default)]
    marketing_lite: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Template {
    name: String,
    language: String,
    category: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SentAt {
    Seconds(i64),
    Text(String),
}

/// Normalizes a send record or an array of them.
pub fn normalize(body: &[u8], received_at: Timestamp) -> Result<Normalized, IngestError> {
    let parsed: Body = serde_json::from_slice(body).or_else(|_| {
        // Untagged enums hide the inner error; parse as the shape the body has to name it.
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let error = if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            serde_path_to_error::deserialize::<_, Vec<Record>>(&mut deserializer).map(Body::Many)
        } else {
            serde_path_to_error::deserialize::<_, Record>(&mut deserializer).map(|r| Body::One(Box::new(r)))
        };
        error.map_err(|e| IngestError::from_serde("", e))
    })?;
    let records = match parsed {
        Body::Many(records) => records,
        Body::One(record) => vec![*record],
    };
    let mut out = Normalized::default();
    for (i, record) in records.into_iter().enumerate() {
        out.events.push(event(record, received_at, &|| format!("[{i}]"))?);
    }
    Ok(out)
}

fn event(record: Record, received_at: Timestamp, path: &dyn Fn() -> String) -> Result<Event, IngestError> {
    let field = |name: &str| format!("{}.{name}", path());
    for (name, value) in [
        ("message_id", &record.message_id),
        ("waba_id", &record.waba_id),
        ("phone_number_id", &record.phone_number_id),
        ("recipient", &record.recipient),
    ] {
        if value.trim().is_empty() {
            return Err(IngestError::malformed(field(name), "must not be empty"));
        }
    }
    let content = match (record.template, record.non_template) {
        (Some(template), None) => {
            let category = TemplateCategory::parse(&template.category).ok_or_else(|| {
                IngestError::malformed(
                    field("template.category"),
                    format!("{:?} is not marketing, utility or authentication", template.category),
                )
            })?;
            SendContent::Template(TemplateUse {
                name: template.name.into(),
                language: template.language.into(),
                category,
            })
        }
        (None, Some(kind)) => SendContent::NonTemplate { kind },
        _ => {
            return Err(IngestError::malformed(
                path(),
                "exactly one of `template` and `non_template` is required",
            ))
        }
    };
    let sent_at = match record.sent_at {
        SentAt::Seconds(seconds) => seconds,
        SentAt::Text(text) => {
            rfc3339_seconds(&text).map_err(|reason| IngestError::malformed(field("sent_at"), reason))?
        }
    };
    let recipient: Arc<str> = record.recipient.trim().trim_start_matches('+').into();
    let user = record.user_id.as_deref().map(str::trim).filter(|u| !u.is_empty()).unwrap_or(&recipient);
    let contact = ContactKey::new(&record.phone_number_id, user);
    let envelope = Envelope { provider: Provider::SendRecords, received_at };
    let kind = EventKind::SendRecord(SendRecord {
        message_id: record.message_id.as_str().into(),
        recipient: Some(recipient),
        content,
        marketing_lite: record.marketing_lite,
    });
    Ok(envelope.event(format!("send:{}", record.message_id), sent_at, &record.waba_id, Some(contact), kind))
}
