//! Facts: what one contact's fold concludes, before account-wide allowances are applied.
//!
//! A fact is identified by what it is about (its kind and message); a late event that changes
//! anything about its conclusion yields an equal id with different content, which the journal
//! turns into a reversal plus a new entry.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::category::{ConversationCategory, MessageClass, PricingCategory, PricingModel, TemplateCategory};
use crate::era::Era;
use crate::event::{ContactKey, EventId, MessageId, ReportedPricing, WabaId};
use crate::id::IdHasher;
use crate::rules::{Rule, RulePath};
use crate::time::{LocalMonth, Timestamp};

/// Identity of a fact: a hash of its kind, account, pair and message (see [`Fact::id`]).
pub type FactId = u128;

/// Why something is not charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreeReason {
    /// Inside a free entry point conversation or window (R14, R25, R53).
    EntryPoint,
    /// Within a monthly allowance: era 1 conversations (R13), era 2 service conversations
    /// (R26), era 5 service messages (R80).
    FreeTier,
    /// Era 3 service conversations (R40).
    FreeService,
    /// A utility template delivered inside the customer service window (R51).
    CustomerServiceWindow,
    /// Per-message pricing never charges non-template messages (R51).
    NonTemplate,
    /// R83c: the provider reported an AI Provider message as not charged under its own policy.
    ProviderPolicy,
    /// Conversation-based pricing charges the conversation (its `conversation_opened` entry),
    /// never the message itself (R10, R21, R22, R56).
    PerConversation,
}

impl FreeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FreeReason::EntryPoint => "entry_point",
            FreeReason::FreeTier => "free_tier",
            FreeReason::FreeService => "free_service",
            FreeReason::CustomerServiceWindow => "customer_service_window",
            FreeReason::NonTemplate => "non_template",
            FreeReason::ProviderPolicy => "provider_policy",
            FreeReason::PerConversation => "per_conversation",
        }
    }
}

/// A monthly allowance a fact draws on; which facts it covers is decided across the whole
/// account (or phone number), in order of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowanceKind {
    /// R13: 1,000 conversations per WABA per month, either type.
    Era1Conversations,
    /// R26: 1,000 service conversations per WABA per month.
    Era2ServiceConversations,
    /// R80: 1,000 service messages per business phone number per month.
    Era5ServiceMessages,
}

impl AllowanceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AllowanceKind::Era1Conversations => "era1_conversations",
            AllowanceKind::Era2ServiceConversations => "era2_service_conversations",
            AllowanceKind::Era5ServiceMessages => "era5_service_messages",
        }
    }

    pub const fn limit(self) -> usize {
        1_000
    }
}

/// One month of one allowance: `scope` is a WABA id or, for era 5, a phone number id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AllowancePool {
    pub kind: AllowanceKind,
    pub scope: Arc<str>,
    pub month: LocalMonth,
}

/// How the fold decided to charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Charge {
    Billable,
    Free(FreeReason),
    /// Free if among the pool's first `limit` claims of the month by time, else billable.
    Allowance(AllowancePool),
}

/// Account facts pricing needs, carried on every fact (R5, R6, R26, R54).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingContext {
    pub waba_id: WabaId,
    pub contact: ContactKey,
    /// Recipient phone number when known: the market derives from it (R5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Arc<str>>,
    /// The month of the fact's instant in the WABA's time zone.
    pub local_month: LocalMonth,
    pub time_zone: Arc<str>,
    /// True while the account has no settings event: the fold used UTC.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub time_zone_assumed: bool,
}

/// Where a message's class came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassSource {
    /// The business's send record (authoritative over what the provider reported).
    SendRecord,
    /// A `template_category_update` in force at send time (R8, R90).
    CategoryChange,
    /// No send record yet: the provider's reported category (replaced once a record arrives).
    ProviderReported,
    /// Unknown; only era 1 can bill without knowing the message's kind.
    Unknown,
}

impl ClassSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ClassSource::SendRecord => "send_record",
            ClassSource::CategoryChange => "category_change",
            ClassSource::ProviderReported => "provider_reported",
            ClassSource::Unknown => "unknown",
        }
    }
}

/// The classification of a delivered message, with both sides kept for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<MessageClass>,
    pub source: ClassSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_name: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_language: Option<Arc<str>>,
    /// The category on the send record, when it differs from the one applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_category: Option<TemplateCategory>,
}

/// A Click-to-WhatsApp / Page-CTA source, for attribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryPointRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctwa_clid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fact {
    ConversationOpened(ConversationOpened),
    MessageBilled(MessageBilled),
}

/// A conversation (eras 1–3) or a free entry point window (eras 4–5) opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationOpened {
    pub category: ConversationCategory,
    pub era: Era,
    pub opened_at: Timestamp,
    pub expires_at: Timestamp,
    /// The business message whose delivery opened it; also the conversation's key.
    pub opened_by: MessageId,
    pub charge: Charge,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<EntryPointRef>,
    pub context: BillingContext,
    pub rules: RulePath,
    pub evidence: Vec<EventId>,
}

/// A delivered business message and how it is counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageBilled {
    pub message_id: MessageId,
    pub era: Era,
    pub pricing_model: PricingModel,
    /// The charge instant: the first delivered/read status by timestamp (R4, W1, W4).
    pub delivered_at: Timestamp,
    pub category: PricingCategory,
    pub charge: Charge,
    /// CBP: the `opened_by` of the conversation the message belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<MessageId>,
    pub classification: Classification,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Arc<ReportedPricing>>,
    /// Group messages (R59): the participants it was delivered to, sorted. A charge is made
    /// per participant, at each one's market rate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<Arc<str>>,
    /// R83b: the tokens a Meta Business Agent message used, where the send record gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    pub context: BillingContext,
    pub rules: RulePath,
    pub evidence: Vec<EventId>,
}

impl MessageBilled {
    /// How many charges the message makes: one, or one per group participant reached (R59).
    pub fn quantity(&self) -> u64 {
        self.participants.len().max(1) as u64
    }
}

impl Fact {
    pub fn charge(&self) -> &Charge {
        match self {
            Fact::ConversationOpened(c) => &c.charge,
            Fact::MessageBilled(m) => &m.charge,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        match self {
            Fact::ConversationOpened(c) => &c.rules,
            Fact::MessageBilled(m) => &m.rules,
        }
    }

    pub fn evidence(&self) -> &[EventId] {
        match self {
            Fact::ConversationOpened(c) => &c.evidence,
            Fact::MessageBilled(m) => &m.evidence,
        }
    }

    pub fn context(&self) -> &BillingContext {
        match self {
            Fact::ConversationOpened(c) => &c.context,
            Fact::MessageBilled(m) => &m.context,
        }
    }

    /// The instant the fact is about: opening or delivery. Allowances are granted in this order.
    pub fn at(&self) -> Timestamp {
        match self {
            Fact::ConversationOpened(c) => c.opened_at,
            Fact::MessageBilled(m) => m.delivered_at,
        }
    }

    /// How many charges the fact makes: one, or one per group participant reached (R59). An
    /// allowance claim draws this many units (R80).
    pub fn quantity(&self) -> u64 {
        match self {
            Fact::ConversationOpened(_) => 1,
            Fact::MessageBilled(m) => m.quantity(),
        }
    }

    pub fn is_conversation_based(&self) -> bool {
        match self {
            Fact::ConversationOpened(_) => true,
            Fact::MessageBilled(m) => m.pricing_model == PricingModel::Cbp,
        }
    }

    /// The fact's identity: what it is about (kind, account, pair, message), not what it
    /// concludes. A later event that changes the conclusion yields a fact with the same id and
    /// different content, which the journal reverses and re-posts.
    pub fn id(&self) -> FactId {
        let (kind, message, context) = match self {
            Fact::ConversationOpened(c) => ("conversation_opened", &c.opened_by, &c.context),
            Fact::MessageBilled(m) => ("message_billed", &m.message_id, &m.context),
        };
        IdHasher::new("ledger.fact.v2")
            .str(kind)
            .str(context.waba_id.as_str())
            .str(&context.contact.phone_number_id)
            .str(&context.contact.user_id)
            .str(message.as_str())
            .finish()
    }
}
