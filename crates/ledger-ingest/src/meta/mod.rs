//! Meta's WhatsApp Cloud API webhooks (`object: whatsapp_business_account`).
//!
//! One body holds entries (one per WABA), each with changes (`field` + `value`). Handled:
//! `messages` (inbound messages of every type, with Click-to-WhatsApp `referral`; statuses with
//! `conversation`, `pricing` and `errors` in every documented spelling and era, string or
//! integer timestamps, business-scoped user ids, group statuses) and
//! `template_category_update`. Other fields carry nothing the fold uses and are skipped with a
//! reason.
//!
//! Event ids: `meta:msg:<wamid>` for inbound messages, `meta:status:<wamid>:<status>` for
//! statuses (plus `:<participant>` for group statuses), `meta:tcu:<template id>:<effective>:<category>`.

mod payload;

use std::borrow::Cow;

use ledger_core::{
    ContactKey, DeliveryStatus, EntryPoint, Event, EventKind, InboundMessage, MessageStatus, PricingModel,
    PricingType, ReportedCategory, ReportedCost, ReportedPricing, StatusError, TemplateCategory,
    TemplateCategoryChange, Timestamp, VolumeTierUpdate,
};
use serde_json::value::RawValue;

use crate::error::{parse_json, IngestError};
use crate::{Envelope, Normalized, Provider, Skipped};
use payload::{
    Change, ChangeValue, ContactPayload, InboundMessagePayload, IntoValue, StatusPayload, Webhook,
};

const OBJECT: &str = "whatsapp_business_account";

/// Normalizes one Cloud API webhook body.
pub fn normalize(body: &[u8], received_at: Timestamp) -> Result<Normalized, IngestError> {
    normalize_as(Provider::MetaCloud, body, received_at)
}

/// Normalizes a body in Meta's format relayed by `provider` (e.g. Gupshup's v3 events): the ids
/// stay Meta's, the provider label is the relay's.
pub(crate) fn normalize_as(
    provider: Provider,
    body: &[u8],
    received_at: Timestamp,
) -> Result<Normalized, IngestError> {
    // One pass when every change value fits the superset; else parse each value once its field
    // is known. Both routes run the same normalization.
    match serde_json::from_slice::<Webhook<'_, ChangeValue<'_>>>(body) {
        Ok(webhook) => normalize_webhook(provider, webhook, received_at),
        Err(_) => normalize_webhook(
            provider,
            parse_json::<Webhook<'_, &RawValue>>(body, &String::new)?,
            received_at,
        ),
    }
}

fn normalize_webhook<'a, V: IntoValue<'a>>(
    provider: Provider,
    webhook: Webhook<'a, V>,
    received_at: Timestamp,
) -> Result<Normalized, IngestError> {
    if webhook.object != OBJECT {
        return Err(IngestError::malformed(
            "object",
            format!("expected {OBJECT:?}, got {:?}", webhook.object),
        ));
    }
    let mut out = Normalized::default();
    for (e, entry) in webhook.entry.into_iter().enumerate() {
        if entry.id.is_empty() {
            return Err(IngestError::malformed(format!("entry[{e}].id"), "empty WABA id"));
        }
        let envelope = Envelope { provider, received_at };
        let ctx = Context { envelope, waba_id: &entry.id, entry_time: entry.time.map(|t| t.0) };
        for (c, change) in entry.changes.into_iter().enumerate() {
            let path = || format!("entry[{e}].changes[{c}].value");
            normalize_change(&ctx, change, &path, &mut out)?;
        }
    }
    Ok(out)
}

struct Context<'a> {
    envelope: Envelope,
    waba_id: &'a str,
    entry_time: Option<i64>,
}

impl Context<'_> {
    fn event(&self, id: String, at: i64, contact: Option<ContactKey>, kind: EventKind) -> Event {
        self.envelope.event(id, at, self.waba_id, contact, kind)
    }
}

/// Builds a JSON path; only called when something must name it (an error, a skip).
type PathFn<'p> = &'p dyn Fn() -> String;

fn normalize_change<'a, V: IntoValue<'a>>(
    ctx: &Context<'_>,
    change: Change<'a, V>,
    path: PathFn<'_>,
    out: &mut Normalized,
) -> Result<(), IngestError> {
    match change.field.as_ref() {
        "messages" => normalize_messages(ctx, change.value.into_value(path)?, path, out),
        "template_category_update" => {
            normalize_category_update(ctx, change.value.into_value(path)?, path, out)
        }
        "account_update" => normalize_account_update(ctx, change.value.into_value(path)?, path, out),
        _ => {
            let reason = "this webhook field carries no billing or eligibility event";
            out.skipped.push(Skipped { path: path(), reason });
            Ok(())
        }
    }
}

/// A part the change's field requires, or an error naming it.
fn required<T>(part: Option<T>, name: &str, path: PathFn<'_>) -> Result<T, IngestError> {
    part.ok_or_else(|| {
        IngestError::malformed(format!("{}.{name}", path()), format!("missing field `{name}`"))
    })
}

fn normalize_messages(
    ctx: &Context<'_>,
    value: ChangeValue<'_>,
    path: PathFn<'_>,
    out: &mut Normalized,
) -> Result<(), IngestError> {
    let metadata = required(value.metadata.as_ref(), "metadata", path)?;
    let phone_number_id = metadata.phone_number_id.as_ref();
    if phone_number_id.is_empty() {
        let at = format!("{}.metadata.phone_number_id", path());
        return Err(IngestError::malformed(at, "empty phone number id"));
    }
    for (i, message) in value.messages.iter().enumerate() {
        let path = || format!("{}.messages[{i}]", path());
        if message.kind.as_deref() == Some("system") {
            let reason = "system notice from WhatsApp, not a user message (R1)";
            out.skipped.push(Skipped { path: path(), reason });
            continue;
        }
        out.events.push(inbound_event(ctx, phone_number_id, &value.contacts, message, &path)?);
    }
    for (i, status) in value.statuses.iter().enumerate() {
        let path = || format!("{}.statuses[{i}]", path());
        match status_event(ctx, phone_number_id, status, &path)? {
            Some(event) => out.events.push(event),
            None => {
                let reason = "legacy status (deleted/warning) carries no delivery";
                out.skipped.push(Skipped { path: path(), reason });
            }
        }
    }
    Ok(())
}

fn non_empty<'a>(value: &'a Option<Cow<'a, str>>) -> Option<&'a str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn inbound_event(
    ctx: &Context<'_>,
    phone_number_id: &str,
    contacts: &[ContactPayload<'_>],
    message: &InboundMessagePayload<'_>,
    path: PathFn<'_>,
) -> Result<Event, IngestError> {
    // R59: a participant's message in a group opens the group's one customer service window, so
    // the pair is (phone number, group) as for the group's statuses. Otherwise the phone
    // number (`from`) when Meta sends one, else the business-scoped user id.
    let user = non_empty(&message.group_id)
        .or_else(|| non_empty(&message.from))
        .or_else(|| non_empty(&message.from_user_id))
        .or_else(|| contacts.first().and_then(|c| non_empty(&c.user_id)))
        .ok_or_else(|| {
            IngestError::malformed(format!("{}.from", path()), "no user id (from or from_user_id)")
        })?;
    if message.id.is_empty() {
        return Err(IngestError::malformed(format!("{}.id", path()), "empty message id"));
    }
    let entry_point = message.referral.as_ref().map(|r| EntryPoint {
        source_id: r.source_id.as_deref().map(str::to_owned),
        source_url: r.source_url.as_deref().map(str::to_owned),
        source_type: r.source_type.as_deref().map(str::to_owned),
        ctwa_clid: r.ctwa_clid.as_deref().map(str::to_owned),
        headline: r.headline.as_deref().map(str::to_owned),
        body: r.body.as_deref().map(str::to_owned),
        media_type: r.media_type.as_deref().map(str::to_owned),
        media_url: r.image_url.as_deref().or(r.video_url.as_deref()).map(str::to_owned),
    });
    let kind =
        EventKind::InboundMessage(InboundMessage { message_id: message.id.as_ref().into(), entry_point });
    let id = format!("meta:msg:{}", message.id);
    Ok(ctx.event(id, message.timestamp.0, Some(ContactKey::new(phone_number_id, user)), kind))
}

fn delivery_status(name: &str) -> Option<DeliveryStatus> {
    match name {
        "sent" => Some(DeliveryStatus::Sent),
        "delivered" => Some(DeliveryStatus::Delivered),
        "read" => Some(DeliveryStatus::Read),
        "played" => Some(DeliveryStatus::Played),
        "failed" => Some(DeliveryStatus::Failed),
        _ => None,
    }
}

fn status_event(
    ctx: &Context<'_>,
    phone_number_id: &str,
    status: &StatusPayload<'_>,
    path: PathFn<'_>,
) -> Result<Option<Event>, IngestError> {
    let Some(delivery) = delivery_status(&status.status) else {
        return match status.status.as_ref() {
            "deleted" | "warning" => Ok(None),
            other => {
                Err(IngestError::malformed(format!("{}.status", path()), format!("unknown status {other:?}")))
            }
        };
    };
    if status.id.is_empty() {
        return Err(IngestError::malformed(format!("{}.id", path()), "empty message id"));
    }
    let recipient = non_empty(&status.recipient_id);
    let user = recipient.or_else(|| non_empty(&status.recipient_user_id)).ok_or_else(|| {
        IngestError::malformed(
            format!("{}.recipient_id", path()),
            "no recipient (recipient_id or recipient_user_id)",
        )
    })?;
    // Group statuses (R59) come per participant: the participant keeps the ids distinct.
    let participant = (status.recipient_type.as_deref() == Some("group"))
        .then(|| {
            non_empty(&status.recipient_participant_id)
                .or_else(|| non_empty(&status.recipient_participant_user_id))
        })
        .flatten();
    let id = match participant {
        Some(p) => format!("meta:status:{}:{}:{p}", status.id, status.status),
        None => format!("meta:status:{}:{}", status.id, status.status),
    };
    let kind = EventKind::MessageStatus(MessageStatus {
        message_id: status.id.as_ref().into(),
        status: delivery,
        recipient: recipient.map(Into::into),
        participant: participant.map(Into::into),
        errors: status
            .errors
            .iter()
            .map(|e| StatusError { code: e.code, title: e.title.as_deref().unwrap_or_default().to_owned() })
            .collect(),
        reported: reported_pricing(status),
    });
    Ok(Some(ctx.event(id, status.timestamp.0, Some(ContactKey::new(phone_number_id, user)), kind)))
}

/// `conversation` and `pricing` as reported, every spelling normalised (Q6, Q7).
fn reported_pricing(status: &StatusPayload<'_>) -> Option<ReportedPricing> {
    if status.conversation.is_none() && status.pricing.is_none() {
        return None;
    }
    let pricing = status.pricing.as_ref();
    let conversation = status.conversation.as_ref();
    Some(ReportedPricing {
        pricing_model: pricing.and_then(|p| p.pricing_model.as_deref()).and_then(PricingModel::parse),
        category: pricing.and_then(|p| p.category.as_deref()).map(ReportedCategory::parse),
        pricing_type: pricing.and_then(|p| p.pricing_type.as_deref()).and_then(PricingType::parse),
        billable: pricing.and_then(|p| p.billable),
        conversation_id: conversation.and_then(|c| c.id.as_deref()).map(str::to_owned),
        conversation_origin: conversation
            .and_then(|c| c.origin.as_ref())
            .and_then(|o| o.kind.as_deref())
            .map(ReportedCategory::parse),
        conversation_expires_at: conversation.and_then(|c| c.expiration_timestamp).map(|t| Timestamp(t.0)),
        cost: pricing.and_then(|p| p.cost.as_ref()).and_then(|cost| {
            let amount = match &cost.amount {
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::String(text) => text.trim().to_owned(),
                _ => return None,
            };
            Some(ReportedCost { amount, currency: cost.currency.trim().to_ascii_uppercase() })
        }),
    })
}

/// R90: an announced change (`correct_category` from `category_update_timestamp`) or a completed
/// one (`new_category`, dated by the entry's `time`).
fn normalize_category_update(
    ctx: &Context<'_>,
    update: ChangeValue<'_>,
    path: PathFn<'_>,
    out: &mut Normalized,
) -> Result<(), IngestError> {
    let (category_text, effective_at, field) =
        match (&update.correct_category, update.category_update_timestamp) {
            (Some(correct), Some(at)) => (correct.as_ref(), at.0, "correct_category"),
            _ => {
                let new = update.new_category.as_deref().ok_or_else(|| {
                    IngestError::malformed(format!("{}.new_category", path()), "missing field `new_category`")
                })?;
                let at = ctx.entry_time.ok_or_else(|| {
                    IngestError::malformed(
                        format!("{}.entry.time", path()),
                        "a completed category change needs the entry's time",
                    )
                })?;
                (new, at, "new_category")
            }
        };
    let Some(category) = TemplateCategory::parse(category_text) else {
        let reason = "category outside marketing/utility/authentication";
        out.skipped.push(Skipped { path: format!("{}.{field}", path()), reason });
        return Ok(());
    };
    let template_id = update.message_template_id.as_deref().unwrap_or_default();
    let id = format!("meta:tcu:{template_id}:{effective_at}:{}", category.as_str());
    let kind = EventKind::TemplateCategoryChange(TemplateCategoryChange {
        name: required(update.message_template_name, "message_template_name", path)?.into_owned(),
        language: update.message_template_language.as_deref().unwrap_or_default().to_owned(),
        category,
        effective_at: Timestamp(effective_at),
    });
    out.events.push(ctx.event(id, effective_at, None, kind));
    Ok(())
}

/// R55: `VOLUME_BASED_PRICING_TIER_UPDATE` becomes an account-level event for pricing. Other
/// account updates (ban, review, auth-international eligibility …) are skipped with a reason.
fn normalize_account_update(
    ctx: &Context<'_>,
    update: ChangeValue<'_>,
    path: PathFn<'_>,
    out: &mut Normalized,
) -> Result<(), IngestError> {
    let (Some("VOLUME_BASED_PRICING_TIER_UPDATE"), Some(info)) =
        (update.event.as_deref(), update.volume_tier_info)
    else {
        let reason = "an account_update other than a volume tier update carries no folded event";
        out.skipped.push(Skipped { path: path(), reason });
        return Ok(());
    };
    let effective_month = info.effective_month.parse().map_err(|reason: String| {
        IngestError::malformed(format!("{}.volume_tier_info.effective_month", path()), reason)
    })?;
    let at = info.tier_update_time.0;
    let id = format!(
        "meta:tier:{}:{}:{}:{}:{}:{at}",
        ctx.waba_id, info.pricing_category, info.region, info.effective_month, info.tier
    );
    let kind = EventKind::VolumeTierUpdate(VolumeTierUpdate {
        pricing_category: info.pricing_category.into_owned(),
        region: info.region.into_owned(),
        tier: info.tier.into_owned(),
        effective_month,
        tier_update_time: Timestamp(at),
    });
    out.events.push(ctx.event(id, at, None, kind));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass route, where the body fits it, gives exactly what the two-pass route gives.
    #[test]
    fn both_parse_routes_agree_on_every_fixture() {
        let root =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/webhooks");
        let mut fitted = 0;
        for folder in ["meta-cloud", "other"] {
            for file in std::fs::read_dir(root.join(folder)).expect("fixtures").filter_map(Result::ok) {
                let body = std::fs::read(file.path()).expect("readable");
                let two_pass = parse_json::<Webhook<'_, &RawValue>>(&body, &String::new)
                    .and_then(|w| normalize_webhook(Provider::MetaCloud, w, Timestamp(1)));
                let Ok(one_pass) = serde_json::from_slice::<Webhook<'_, ChangeValue<'_>>>(&body) else {
                    continue;
                };
                fitted += 1;
                let one_pass = normalize_webhook(Provider::MetaCloud, one_pass, Timestamp(1));
                assert_eq!(one_pass, two_pass, "{}", file.path().display());
            }
        }
        assert!(fitted >= 40, "the one-pass route should fit most fixtures, fitted {fitted}");
    }

    /// R59: a participant's message in a group is the group's (it opens the group's one
    /// service window), as the group's statuses are. Shape from Meta's group messages webhook
    /// reference (`messages[].group_id`).
    #[test]
    fn a_group_message_is_keyed_by_its_group() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"waba-1","changes":[{
            "field":"messages","value":{"messaging_product":"whatsapp",
            "metadata":{"display_phone_number":"15550001111","phone_number_id":"pn-1"},
            "contacts":[{"profile":{"name":"Ana"},"wa_id":"919876543210"}],
            "messages":[{"from":"919876543210","group_id":"120363000000000001","id":"wamid.G1",
                "timestamp":"1756684800","text":{"body":"hello"},"type":"text"}]}}]}]}"#;
        let normalized = normalize(body, Timestamp(1)).expect("normalizes");
        let event = &normalized.events[0];
        assert_eq!(event.contact, Some(ContactKey::new("pn-1", "120363000000000001")));
        assert!(matches!(&event.kind, EventKind::InboundMessage(m) if m.message_id.as_str() == "wamid.G1"));
    }
}
