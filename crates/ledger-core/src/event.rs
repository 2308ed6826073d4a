//! Normalized events: what ingest produces and the fold consumes.
//!
//! The JSON form of [`Event`] is the normalized-event format documented in the README (one event
//! per line for `ledger fold`); the protobuf form lives in `proto/ledger/v1/events.proto`.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::category::{PricingModel, PricingType, ReportedCategory, TemplateCategory};
use crate::time::Timestamp;

/// The newest normalized-event schema version this build understands.
pub const SCHEMA_VERSION: u32 = 1;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Arc<str>);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                $name(Arc::from(text))
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                $name(Arc::from(text))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Deterministic id of a normalized event, derived from the provider's own identifiers
    /// (e.g. wamid + status) so that a re-delivered webhook yields the same id.
    EventId
);
id_type!(
    /// The provider's id of a WhatsApp message (a `wamid.…`).
    MessageId
);
id_type!(
    /// A WhatsApp Business Account id: the unit of time zone, currency and free tier.
    WabaId
);

/// The pair a customer service window, conversations and entry point windows belong to:
/// business phone number + user (spec Q17: this ledger keys them by phone number, not WABA).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContactKey {
    pub phone_number_id: Arc<str>,
    /// The user's `wa_id`, or a business-scoped user id where Meta sends one.
    pub user_id: Arc<str>,
}

impl ContactKey {
    pub fn new(phone_number_id: &str, user_id: &str) -> Self {
        ContactKey { phone_number_id: Arc::from(phone_number_id), user_id: Arc::from(user_id) }
    }
}

impl std::fmt::Display for ContactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.phone_number_id, self.user_id)
    }
}

/// One normalized event with its envelope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub event_id: EventId,
    #[serde(default = "default_schema_version")]
    pub schema_version: u32,
    /// When it happened, per the provider (a status's `timestamp`, a message's `timestamp`,
    /// a send record's sent time). The fold orders by this, never by arrival (W1).
    pub event_time: Timestamp,
    /// When the ledger received it. Used for as-of answers, never by the rules.
    pub receive_time: Timestamp,
    pub provider: String,
    pub waba_id: WabaId,
    /// Absent for account-level events (settings, template category changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<ContactKey>,
    pub kind: EventKind,
}

fn default_schema_version() -> u32 {
    SCHEMA_VERSION
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventKind {
    InboundMessage(InboundMessage),
    SendRecord(SendRecord),
    MessageStatus(MessageStatus),
    PricingReport(PricingReport),
    TemplateCategoryChange(TemplateCategoryChange),
    AccountSettings(AccountSettings),
    VolumeTierUpdate(VolumeTierUpdate),
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::InboundMessage(_) => "inbound_message",
            EventKind::SendRecord(_) => "send_record",
            EventKind::MessageStatus(_) => "message_status",
            EventKind::PricingReport(_) => "pricing_report",
            EventKind::TemplateCategoryChange(_) => "template_category_change",
            EventKind::AccountSettings(_) => "account_settings",
            EventKind::VolumeTierUpdate(_) => "volume_tier_update",
        }
    }

    /// Tie-break at equal event times (ARCHITECTURE decision 1): account facts first, then a
    /// user's message (so a reply at the same second sees the window it opened), then sends,
    /// then statuses.
    pub fn rank(&self) -> u8 {
        match self {
            EventKind::AccountSettings(_) => 0,
            EventKind::TemplateCategoryChange(_) | EventKind::VolumeTierUpdate(_) => 1,
            EventKind::InboundMessage(_) => 2,
            EventKind::SendRecord(_) => 3,
            EventKind::MessageStatus(_) | EventKind::PricingReport(_) => 4,
        }
    }

    pub fn is_contact_scoped(&self) -> bool {
        matches!(
            self,
            EventKind::InboundMessage(_)
                | EventKind::SendRecord(_)
                | EventKind::MessageStatus(_)
                | EventKind::PricingReport(_)
        )
    }
}

/// A message from the user to the business (R1: opens or resets the customer service window).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundMessage {
    pub message_id: MessageId,
    /// Present when the user arrived from a Click-to-WhatsApp ad or a Page call-to-action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<EntryPoint>,
}

/// The `referral` of a Click-to-WhatsApp / Page-CTA entry (spec §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryPoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// `ad` or `post` as reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    /// Omitted by Meta for WhatsApp Status placements (E9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctwa_clid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    /// The ad's primary text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `image` or `video`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The ad's `image_url` or `video_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_url: Option<String>,
}

/// The business's own record of a message it sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRecord {
    pub message_id: MessageId,
    /// The recipient's phone number in E.164 digits, when known; pricing derives the market
    /// from it (R5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Arc<str>>,
    pub content: SendContent,
    /// Sent through the Marketing Messages Lite API (R51: category `marketing_lite`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub marketing_lite: bool,
    /// Generated by Meta Business Agent (R83b): counted apart, charged per token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_business_agent: Option<BusinessAgentUse>,
}

/// A Meta Business Agent message's usage, as the business's send record gives it (R83b).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessAgentUse {
    /// Tokens the message used (AI and delivery together), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SendContent {
    Template(TemplateUse),
    /// A free-form message; `kind` is the message type (`text`, `image`, `interactive` …).
    NonTemplate {
        kind: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateUse {
    pub name: Arc<str>,
    pub language: Arc<str>,
    /// The category the business believed the template had when it sent it.
    pub category: TemplateCategory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Played,
    Failed,
}

impl DeliveryStatus {
    /// `read` and `played` imply delivery (W4).
    pub fn proves_delivery(self) -> bool {
        matches!(self, DeliveryStatus::Delivered | DeliveryStatus::Read | DeliveryStatus::Played)
    }

    /// Monotonic merge order (W1): sent < delivered < read < played. `failed` is ranked apart.
    pub fn progress(self) -> u8 {
        match self {
            DeliveryStatus::Sent => 1,
            DeliveryStatus::Delivered => 2,
            DeliveryStatus::Read => 3,
            DeliveryStatus::Played => 4,
            DeliveryStatus::Failed => 0,
        }
    }
}

/// A delivery status of a business message (spec §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageStatus {
    pub message_id: MessageId,
    pub status: DeliveryStatus,
    /// `recipient_id` as reported (a phone number, or empty for business-scoped ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Arc<str>>,
    /// Group messages (R59): the participant this status is about (`recipient_participant_id`,
    /// a phone number, else the business-scoped user id); `recipient` is then the group id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<StatusError>,
    /// Whatever the provider said about pricing; kept for reconciliation, never trusted over
    /// the send record's category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<ReportedPricing>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusError {
    pub code: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
}

/// `conversation` and `pricing` as the provider reported them on a status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportedPricing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_model: Option<PricingModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<ReportedCategory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_type: Option<PricingType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_origin: Option<ReportedCategory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_expires_at: Option<Timestamp>,
    /// R84: `pricing.cost` of a max-price marketing message, Meta's estimate of its charge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<ReportedCost>,
}

/// `pricing.cost` {amount, currency} (R84). The amount is a decimal in the currency's unit,
/// kept as its text so no float ever touches money.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportedCost {
    pub amount: String,
    pub currency: String,
}

impl ReportedPricing {
    /// Whether the provider reported the message as part of a free entry point (spec §4.2: the
    /// only authoritative confirmation of an FEP).
    pub fn says_entry_point(&self) -> bool {
        self.pricing_type == Some(PricingType::FreeEntryPoint)
            || self.category == Some(ReportedCategory::ReferralConversion)
            || self.conversation_origin == Some(ReportedCategory::ReferralConversion)
    }

    /// Whether the provider says the message is charged: `type=regular`, else `billable`.
    pub fn says_charged(&self) -> bool {
        match self.pricing_type {
            Some(t) => t == PricingType::Regular,
            None => self.billable == Some(true),
        }
    }

    /// Whether the report carries any pricing outcome at all.
    pub fn has_outcome(&self) -> bool {
        self.pricing_type.is_some() || self.category.is_some() || self.conversation_origin.is_some()
    }
}

/// A provider's pricing for one business message, reported apart from any delivery status
/// (e.g. Gupshup's billing events). Kept for reconciliation; the fold uses it as the provider's
/// report only when no status of the message carries one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingReport {
    pub message_id: MessageId,
    pub reported: ReportedPricing,
}

/// Meta re-categorised a template (R90): from `effective_at` on, uses of it are billed as
/// `category` (R8).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateCategoryChange {
    pub name: String,
    pub language: String,
    pub category: TemplateCategory,
    pub effective_at: Timestamp,
}

/// Meta placed the business in a new volume tier for a market and category (R54, R55): input to
/// pricing, kept in the log; the fold itself does not use it. Duplicates of one change can arrive
/// with different `tier_update_time`s; the smallest is authoritative.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeTierUpdate {
    /// As reported, e.g. `UTILITY`.
    pub pricing_category: String,
    /// The market, e.g. `India`.
    pub region: String,
    /// `LOWER:UPPER` bounds of the tier (`UPPER` may be `MAX`).
    pub tier: String,
    /// The month the tier applies to.
    pub effective_month: crate::time::LocalMonth,
    pub tier_update_time: Timestamp,
}

/// Account (WABA) settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    /// IANA time zone name, e.g. `America/Sao_Paulo`.
    pub time_zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The business portfolio the WABA belongs to (volume tiers are per portfolio, R54).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_id: Option<String>,
}

/// Why an event cannot be folded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("schema_version {found} is newer than this build understands ({SCHEMA_VERSION})")]
    UnsupportedSchemaVersion { found: u32 },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("a {kind} event needs a contact (phone_number_id and user_id)")]
    MissingContact { kind: &'static str },
    #[error("a {kind} event is account-level and must not name a contact")]
    UnexpectedContact { kind: &'static str },
    #[error("time_zone {0:?} is not an IANA time zone name")]
    UnknownTimeZone(String),
    #[error(
        "event_time {found} is outside the instants this ledger accepts ({EVENT_TIME_MIN} = 2010-01-01 \
         to {EVENT_TIME_MAX} = 2100-01-01 UTC)"
    )]
    EventTimeOutOfRange { found: i64 },
}

/// The first instant an event may carry: 2010-01-01 00:00 UTC, before WhatsApp's business
/// messaging existed. Earlier (or a year 294,000) is a provider's or a client's mistake, and
/// folding it would bill a month no rule covers.
pub const EVENT_TIME_MIN: i64 = 1_262_304_000;
/// The first instant an event may not carry: 2100-01-01 00:00 UTC.
pub const EVENT_TIME_MAX: i64 = 4_102_444_800;

impl Event {
    /// Checks what the types cannot: non-empty ids, an event time in 2010–2100, a contact exactly
    /// where one belongs, a known time zone.
    pub fn validate(&self) -> Result<(), EventError> {
        if self.schema_version == 0 || self.schema_version > SCHEMA_VERSION {
            return Err(EventError::UnsupportedSchemaVersion { found: self.schema_version });
        }
        non_empty(self.event_id.as_str(), "event_id")?;
        non_empty(self.waba_id.as_str(), "waba_id")?;
        if !(EVENT_TIME_MIN..EVENT_TIME_MAX).contains(&self.event_time.0) {
            return Err(EventError::EventTimeOutOfRange { found: self.event_time.0 });
        }
        let kind = self.kind.name();
        match (&self.contact, self.kind.is_contact_scoped()) {
            (None, true) => return Err(EventError::MissingContact { kind }),
            (Some(_), false) => return Err(EventError::UnexpectedContact { kind }),
            (Some(contact), true) => {
                non_empty(&contact.phone_number_id, "contact.phone_number_id")?;
                non_empty(&contact.user_id, "contact.user_id")?;
            }
            (None, false) => {}
        }
        match &self.kind {
            EventKind::InboundMessage(m) => non_empty(m.message_id.as_str(), "message_id"),
            EventKind::SendRecord(s) => non_empty(s.message_id.as_str(), "message_id"),
            EventKind::MessageStatus(s) => non_empty(s.message_id.as_str(), "message_id"),
            EventKind::PricingReport(r) => non_empty(r.message_id.as_str(), "message_id"),
            EventKind::TemplateCategoryChange(c) => non_empty(&c.name, "name"),
            EventKind::AccountSettings(s) => parse_time_zone(&s.time_zone).map(|_| ()),
            EventKind::VolumeTierUpdate(t) => non_empty(&t.tier, "tier").and(non_empty(&t.region, "region")),
        }
    }

    /// A compact digest for duplicate detection: what `first_difference` compares, without
    /// keeping the event itself. In-memory only: built on `std::hash`, it is not stable across
    /// releases and must not be persisted.
    pub fn fingerprint(&self) -> EventFingerprint {
        let digest = |value: &dyn Fn(&mut dyn Hasher)| {
            let mut hasher = FINGERPRINT_HASHER.build_hasher();
            value(&mut hasher);
            hasher.finish()
        };
        EventFingerprint {
            event_time: self.event_time,
            provider: digest(&|h| self.provider.hash(&mut HashInto(h))),
            body: digest(&|h| {
                let mut h = HashInto(h);
                (self.schema_version, &self.waba_id, &self.contact, &self.kind).hash(&mut h)
            }),
        }
    }

    /// The first field in which `other` (an event with the same id) differs from `self`, for
    /// `ExistsWithDifferent` answers. `receive_time` is not compared: a re-delivery is later.
    pub fn first_difference(&self, other: &Event) -> Option<&'static str> {
        if self.schema_version != other.schema_version {
            Some("schema_version")
        } else if self.event_time != other.event_time {
            Some("event_time")
        } else if self.provider != other.provider {
            Some("provider")
        } else if self.waba_id != other.waba_id {
            Some("waba_id")
        } else if self.contact != other.contact {
            Some("contact")
        } else if self.kind != other.kind {
            Some("kind")
        } else {
            None
        }
    }
}

/// A fixed seed so equal events always get equal fingerprints within and across processes of
/// one build.
const FINGERPRINT_HASHER: foldhash::quality::FixedState = foldhash::quality::FixedState::with_seed(0x1ed9e7);

/// What duplicate detection keeps of an event: its time and digests of the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFingerprint {
    event_time: Timestamp,
    provider: u64,
    body: u64,
}

impl EventFingerprint {
    /// The first part in which two events with the same id differ (`receive_time` is not
    /// compared: a re-delivery arrives later).
    pub fn first_difference(&self, other: &EventFingerprint) -> Option<&'static str> {
        if self.event_time != other.event_time {
            Some("event_time")
        } else if self.provider != other.provider {
            Some("provider")
        } else if self.body != other.body {
            Some("content")
        } else {
            None
        }
    }
}

/// Adapts `&mut dyn Hasher` to the `Hasher` that `Hash::hash` takes by generic.
struct HashInto<'a>(&'a mut dyn Hasher);

impl Hasher for HashInto<'_> {
    fn finish(&self) -> u64 {
        self.0.finish()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes)
    }
}

pub fn parse_time_zone(name: &str) -> Result<Tz, EventError> {
    name.parse::<Tz>().map_err(|_| EventError::UnknownTimeZone(name.to_owned()))
}

fn non_empty(value: &str, field: &'static str) -> Result<(), EventError> {
    if value.is_empty() {
        Err(EventError::Empty { field })
    } else {
        Ok(())
    }
}
