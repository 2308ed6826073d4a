//! The Cloud API payload shapes, as far as the ledger reads them. Unknown fields are ignored
//! (Meta adds fields often); strings are borrowed from the body where JSON allows.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::error::{parse_json, IngestError};
use crate::timestamp::UnixSeconds;

/// A webhook body; `V` is how each change's `value` is held: [`ChangeValue`] (parsed in the
/// same pass) or a [`RawValue`] (parsed once `field` says what it is).
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>, 'de: 'a"))]
pub(super) struct Webhook<'a, V> {
    #[serde(borrow)]
    pub object: Cow<'a, str>,
    #[serde(default = "Vec::new")]
    pub entry: Vec<Entry<'a, V>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>, 'de: 'a"))]
pub(super) struct Entry<'a, V> {
    /// The WABA id.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(default)]
    pub time: Option<UnixSeconds>,
    #[serde(default = "Vec::new")]
    pub changes: Vec<Change<'a, V>>,
}

#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>, 'de: 'a"))]
pub(super) struct Change<'a, V> {
    #[serde(borrow)]
    pub field: Cow<'a, str>,
    pub value: V,
}

/// Every part of a change value the adapter reads, whatever the change's `field` (`messages`,
/// `template_category_update`, `account_update`); each normalization demands the parts its field
/// requires. Meta puts `value` before `field`: holding this superset lets a body parse in one
/// pass. Unrelated fields whose values clash with these shapes make that parse fail, and the body
/// is parsed again with [`RawValue`]s.
#[derive(Debug, Deserialize)]
pub(super) struct ChangeValue<'a> {
    #[serde(default, borrow)]
    pub metadata: Option<Metadata<'a>>,
    #[serde(default, borrow)]
    pub contacts: Vec<ContactPayload<'a>>,
    #[serde(default, borrow)]
    pub messages: Vec<InboundMessagePayload<'a>>,
    #[serde(default, borrow)]
    pub statuses: Vec<StatusPayload<'a>>,
    #[serde(default, borrow)]
    pub event: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub volume_tier_info: Option<VolumeTierInfo<'a>>,
    #[serde(default, deserialize_with = "string_or_number")]
    pub message_template_id: Option<String>,
    #[serde(default, borrow)]
    pub message_template_name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub message_template_language: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub new_category: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub correct_category: Option<Cow<'a, str>>,
    #[serde(default)]
    pub category_update_timestamp: Option<UnixSeconds>,
}

/// How a change's value is held: parsed already (one pass) or as raw JSON parsed once its
/// `field` says it is one the adapter reads.
pub(super) trait IntoValue<'a> {
    fn into_value(self, path: &dyn Fn() -> String) -> Result<ChangeValue<'a>, IngestError>;
}

impl<'a> IntoValue<'a> for ChangeValue<'a> {
    fn into_value(self, _: &dyn Fn() -> String) -> Result<ChangeValue<'a>, IngestError> {
        Ok(self)
    }
}

impl<'a> IntoValue<'a> for &'a RawValue {
    fn into_value(self, path: &dyn Fn() -> String) -> Result<ChangeValue<'a>, IngestError> {
        parse_json(self.get().as_bytes(), path)
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Metadata<'a> {
    #[serde(borrow)]
    pub phone_number_id: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ContactPayload<'a> {
    #[serde(default, borrow)]
    pub user_id: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct InboundMessagePayload<'a> {
    #[serde(default, borrow)]
    pub from: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub from_user_id: Option<Cow<'a, str>>,
    /// Set on messages a participant wrote in a group (R59).
    #[serde(default, borrow)]
    pub group_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    pub timestamp: UnixSeconds,
    #[serde(default, borrow, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub referral: Option<Referral<'a>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Referral<'a> {
    #[serde(default, borrow)]
    pub source_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub source_url: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub source_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub headline: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub ctwa_clid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub body: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub media_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub image_url: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub video_url: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct StatusPayload<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub status: Cow<'a, str>,
    pub timestamp: UnixSeconds,
    #[serde(default, borrow)]
    pub recipient_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub recipient_user_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub recipient_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub recipient_participant_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub recipient_participant_user_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub conversation: Option<ConversationPayload<'a>>,
    #[serde(default, borrow)]
    pub pricing: Option<PricingPayload<'a>>,
    #[serde(default, borrow)]
    pub errors: Vec<ErrorPayload<'a>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ConversationPayload<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub expiration_timestamp: Option<UnixSeconds>,
    #[serde(default, borrow)]
    pub origin: Option<OriginPayload<'a>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct OriginPayload<'a> {
    #[serde(default, borrow, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct PricingPayload<'a> {
    #[serde(default)]
    pub billable: Option<bool>,
    #[serde(default, borrow)]
    pub pricing_model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub category: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "type")]
    pub pricing_type: Option<Cow<'a, str>>,
    /// R84: max-price messages' estimated charge.
    #[serde(default)]
    pub cost: Option<CostPayload>,
}

/// `pricing.cost`: the amount as a JSON number (or a string) in the currency's unit.
#[derive(Debug, Deserialize)]
pub(super) struct CostPayload {
    pub amount: serde_json::Value,
    pub currency: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct ErrorPayload<'a> {
    pub code: i64,
    #[serde(default, borrow)]
    pub title: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct VolumeTierInfo<'a> {
    pub tier_update_time: UnixSeconds,
    #[serde(borrow)]
    pub pricing_category: Cow<'a, str>,
    #[serde(borrow)]
    pub tier: Cow<'a, str>,
    #[serde(borrow)]
    pub effective_month: Cow<'a, str>,
    #[serde(borrow)]
    pub region: Cow<'a, str>,
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id<'a> {
        Text(#[serde(borrow)] Cow<'a, str>),
        Number(i64),
    }
    Ok(Option::<Id<'_>>::deserialize(d)?.map(|id| match id {
        Id::Text(text) => text.into_owned(),
        Id::Number(n) => n.to_string(),
    }))
}
