//! The per-pair state machine of spec §3.8: customer service window, open conversations, the
//! free entry point window and a pending entry point, stepped by inbound messages and
//! deliveries in time order.

use std::sync::Arc;

use crate::catalog::TemplateCatalog;
use crate::category::{ConversationCategory, MessageClass, PricingCategory, PricingModel, TemplateCategory};
use crate::era::{AccountClock, Era};
use crate::event::{ContactKey, EntryPoint, EventId, MessageId, ReportedPricing, WabaId};
use crate::fact::{
    AllowanceKind, AllowancePool, BillingContext, Charge, Classification, ConversationOpened, EntryPointRef,
    Fact, FreeReason, MessageBilled,
};
use crate::rules::{Rule, RulePath};
use crate::time::{Timestamp, DAY_SECONDS, HOUR_SECONDS};

/// R1: a customer service window lasts 24 h from the latest user message.
pub const CUSTOMER_SERVICE_WINDOW_SECONDS: i64 = 24 * HOUR_SECONDS;
/// R10, R24: a conversation lasts exactly 24 h.
pub const CONVERSATION_SECONDS: i64 = 24 * HOUR_SECONDS;
/// R25, R53: the free entry point window lasts 72 h.
pub const ENTRY_POINT_WINDOW_SECONDS: i64 = 72 * HOUR_SECONDS;
/// R82 (era 5, reported): "up to 7 days"; Q14 is open, this ledger reads it as a fixed 7 days.
pub const ERA5_ENTRY_POINT_WINDOW_SECONDS: i64 = 7 * DAY_SECONDS;
/// R25, R53: the business must reply within 24 h of the entry message (Q3).
pub const ENTRY_POINT_REPLY_SECONDS: i64 = 24 * HOUR_SECONDS;

/// What the fold needs to know about the account and the pair it is folding.
#[derive(Debug, Clone, Copy)]
pub struct FoldContext<'a> {
    pub clock: &'a AccountClock,
    pub catalog: &'a TemplateCatalog,
    pub waba_id: &'a WabaId,
    pub contact: &'a ContactKey,
}

impl FoldContext<'_> {
    fn billing(&self, at: Timestamp, recipient: Option<&Arc<str>>) -> BillingContext {
        BillingContext {
            waba_id: self.waba_id.clone(),
            contact: self.contact.clone(),
            recipient: recipient.cloned(),
            local_month: self.clock.local_month(at),
            time_zone: self.clock.tz_name().clone(),
            time_zone_assumed: self.clock.tz_assumed(),
        }
    }
}

/// A business message's delivery, ready to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub message_id: MessageId,
    /// The charge instant (R4).
    pub at: Timestamp,
    /// When it was sent; the entry point reply deadline is measured on it (§3.8 step 3).
    pub sent_at: Timestamp,
    pub classification: Classification,
    pub marketing_lite: bool,
    pub reported: Option<Arc<ReportedPricing>>,
    pub recipient: Option<Arc<str>>,
    /// Group messages (R59): the participants it was delivered to, sorted; empty otherwise.
    pub participants: Vec<Arc<str>>,
    pub evidence: Vec<EventId>,
}

impl Delivery {
    /// A message to a group (R59): known by its participants' statuses.
    pub fn to_group(&self) -> bool {
        !self.participants.is_empty()
    }

    /// Both are group deliveries that differ only in whom they reached (and the evidence of it).
    /// Every field is named, so a new one has to say whether it may differ.
    pub fn differs_only_in_participants(&self, other: &Delivery) -> bool {
        let Delivery {
            message_id,
            at,
            sent_at,
            classification,
            marketing_lite,
            reported,
            recipient,
            participants: _,
            evidence: _,
        } = self;
        self.to_group()
            && other.to_group()
            && *message_id == other.message_id
            && *at == other.at
            && *sent_at == other.sent_at
            && *classification == other.classification
            && *marketing_lite == other.marketing_lite
            && *reported == other.reported
            && *recipient == other.recipient
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenConversation {
    pub category: ConversationCategory,
    pub opened_at: Timestamp,
    pub expires_at: Timestamp,
    pub opened_by: MessageId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryWindow {
    pub opened_at: Timestamp,
    pub expires_at: Timestamp,
    pub opened_by: MessageId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingEntry {
    pub at: Timestamp,
    pub event_id: EventId,
    /// Shared with the inbound observation: re-folds clone it often.
    pub entry_point: Arc<EntryPoint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceWindow {
    pub until: Timestamp,
    pub opened_by: EventId,
}

/// The state of one (business phone number, user) pair between occurrences.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PairState {
    pub service_window: Option<ServiceWindow>,
    /// Conversation-based pricing: open conversations, in opening order (R23).
    pub conversations: Vec<OpenConversation>,
    /// An open free entry point conversation (CBP) or window (PMP).
    pub entry_window: Option<EntryWindow>,
    /// A Click-to-WhatsApp / Page-CTA entry not yet answered (§3.8).
    pub pending_entry: Option<PendingEntry>,
}

enum EntryReply {
    /// No pending entry, or the message was sent before the entry message (not a reply).
    NotAReply,
    Qualifies(PendingEntry),
    /// Q3: sent 24 h or more after the entry message.
    TooLate,
    /// E8: the provider reported a non-entry-point outcome for the reply (e.g. desktop client).
    DeniedByProvider,
}

impl PairState {
    /// Q2: windows are half-open, so a message at exactly the close instant is outside.
    pub fn service_window_open(&self, at: Timestamp) -> bool {
        self.service_window.as_ref().is_some_and(|w| at < w.until)
    }

    /// R1: a user message opens or resets the window; a qualifying referral records a pending
    /// entry unless an entry point window is already open. Q3 (open): a newer entry message
    /// replaces an unanswered one, so the deadline runs from the latest ad click.
    pub fn on_inbound(&mut self, at: Timestamp, event_id: &EventId, entry_point: Option<&Arc<EntryPoint>>) {
        self.expire(at);
        self.service_window = Some(ServiceWindow {
            until: at.plus(CUSTOMER_SERVICE_WINDOW_SECONDS),
            opened_by: event_id.clone(),
        });
        if let Some(entry_point) = entry_point {
            if self.entry_window.is_none() {
                self.pending_entry =
                    Some(PendingEntry { at, event_id: event_id.clone(), entry_point: entry_point.clone() });
            }
        }
    }

    /// §3.8 step 1: drop whatever expired by `at`.
    pub fn expire(&mut self, at: Timestamp) {
        self.conversations.retain(|c| at < c.expires_at);
        if self.entry_window.as_ref().is_some_and(|w| w.expires_at <= at) {
            self.entry_window = None;
        }
    }

    fn take_entry_reply(&mut self, d: &Delivery) -> EntryReply {
        let Some(pending) = &self.pending_entry else {
            return EntryReply::NotAReply;
        };
        if d.sent_at < pending.at {
            return EntryReply::NotAReply;
        }
        let pending = self.pending_entry.take().expect("checked above");
        if d.sent_at >= pending.at.plus(ENTRY_POINT_REPLY_SECONDS) {
            EntryReply::TooLate
        } else if d.reported.as_ref().is_some_and(|r| r.has_outcome() && !r.says_entry_point()) {
            EntryReply::DeniedByProvider
        } else {
            EntryReply::Qualifies(pending)
        }
    }

    /// Evaluates one delivery, pushing the facts it produces.
    pub fn on_delivery(&mut self, ctx: &FoldContext<'_>, d: &Delivery, out: &mut Vec<Fact>) {
        self.expire(d.at);
        let era = ctx.clock.era_at(d.at);
        let mut step = Step { ctx, d, era, out, notes: RulePath::new() };
        match era {
            // Notification-based pricing is out of scope: nothing is billed here.
            Era::NotificationBased => {}
            Era::ConversationsV1 | Era::ConversationCategories | Era::FreeService => {
                self.conversation_based(&mut step)
            }
            Era::PerMessage | Era::PaidService => self.per_message(&mut step),
        }
    }

    /// §3.8, CBP steps 2–6 (eras 1–3).
    fn conversation_based(&mut self, step: &mut Step<'_, '_>) {
        let d = step.d;
        let t = d.at;
        if let Some(window) = &self.entry_window {
            let opened_by = window.opened_by.clone();
            step.joins(ConversationCategory::ReferralConversion, opened_by, &[Rule::R25]);
            return;
        }
        match self.take_entry_reply(d) {
            EntryReply::Qualifies(entry) if step.ctx.clock.fep_is_72h_window(t) => {
                // R25: the entry point conversation closes every other open conversation.
                self.conversations.clear();
                self.entry_window = Some(EntryWindow {
                    opened_at: t,
                    expires_at: t.plus(ENTRY_POINT_WINDOW_SECONDS),
                    opened_by: d.message_id.clone(),
                });
                step.opens(
                    ConversationCategory::ReferralConversion,
                    t.plus(ENTRY_POINT_WINDOW_SECONDS),
                    Charge::Free(FreeReason::EntryPoint),
                    Some(&entry),
                    &[Rule::R25, Rule::Q3, Rule::Q1],
                );
                return;
            }
            EntryReply::Qualifies(entry) => {
                // R14, before the 72 h window existed: the first conversation from the entry
                // point is free; if one is already open the reply joins it (R11).
                if self.conversations.is_empty() {
                    let expires_at = t.plus(CONVERSATION_SECONDS);
                    self.open(ConversationCategory::ReferralConversion, t, expires_at, d);
                    step.opens(
                        ConversationCategory::ReferralConversion,
                        expires_at,
                        Charge::Free(FreeReason::EntryPoint),
                        Some(&entry),
                        &[Rule::R14, Rule::R10, Rule::Q3],
                    );
                    return;
                }
                step.notes.push(Rule::R14);
            }
            EntryReply::TooLate => step.notes.push(Rule::Q3),
            EntryReply::DeniedByProvider => step.notes.push(Rule::E8),
            EntryReply::NotAReply => {}
        }

        if step.era == Era::ConversationsV1 {
            // R11: one conversation at a time; everything joins it.
            if let Some(open) = self.conversations.first() {
                let (category, opened_by) = (open.category, open.opened_by.clone());
                step.joins(category, opened_by, &[Rule::R11]);
                return;
            }
            let category = if self.service_window_open(t) {
                ConversationCategory::UserInitiated
            } else {
                ConversationCategory::BusinessInitiated
            };
            let expires_at = t.plus(CONVERSATION_SECONDS);
            self.open(category, t, expires_at, d);
            let pool = step.pool(AllowanceKind::Era1Conversations, step.ctx.waba_id.0.clone());
            step.opens(
                category,
                expires_at,
                Charge::Allowance(pool),
                None,
                &[Rule::R10, Rule::R12, Rule::R13, Rule::Q21],
            );
            return;
        }

        match d.classification.class {
            Some(MessageClass::Template(template)) => {
                let category = ConversationCategory::from(template);
                if let Some(open) = self.conversations.iter().find(|c| c.category == category) {
                    let opened_by = open.opened_by.clone();
                    step.joins(category, opened_by, &[Rule::R21]);
                    return;
                }
                let expires_at = t.plus(CONVERSATION_SECONDS);
                self.open(category, t, expires_at, d);
                step.opens(category, expires_at, Charge::Billable, None, &[Rule::R20, Rule::R21, Rule::R24]);
            }
            Some(MessageClass::NonTemplate) => {
                // Q11: which open conversation a free-form message joins is undocumented;
                // this ledger picks the earliest opened (billing is unaffected).
                if let Some(open) = self.conversations.first() {
                    let (category, opened_by) = (open.category, open.opened_by.clone());
                    step.joins(category, opened_by, &[Rule::R22, Rule::Q11]);
                    return;
                }
                let expires_at = t.plus(CONVERSATION_SECONDS);
                self.open(ConversationCategory::Service, t, expires_at, d);
                let (charge, rules): (Charge, &[Rule]) = if step.era == Era::FreeService {
                    (Charge::Free(FreeReason::FreeService), &[Rule::R22, Rule::R40])
                } else {
                    let pool = step.pool(AllowanceKind::Era2ServiceConversations, step.ctx.waba_id.0.clone());
                    (Charge::Allowance(pool), &[Rule::R22, Rule::R26])
                };
                step.opens(ConversationCategory::Service, expires_at, charge, None, rules);
            }
            // Held by the caller (W3): the kind is unknown until a send record arrives.
            None => {}
        }
    }

    fn open(&mut self, category: ConversationCategory, t: Timestamp, expires_at: Timestamp, d: &Delivery) {
        self.conversations.push(OpenConversation {
            category,
            opened_at: t,
            expires_at,
            opened_by: d.message_id.clone(),
        });
    }

    /// §3.8, PMP steps 1–6 (era 4) with the era 5 changes when enabled.
    fn per_message(&mut self, step: &mut Step<'_, '_>) {
        let d = step.d;
        let t = d.at;
        let era5 = step.era == Era::PaidService;
        // R56 / Q12: only utility conversations opened before the switch span it.
        self.conversations.retain(|c| c.category == ConversationCategory::Utility);
        if d.to_group() {
            self.group_message(step);
            return;
        }

        if self.entry_window.is_some() {
            step.message(
                PricingModel::Pmp,
                PricingCategory::ReferralConversion,
                Charge::Free(FreeReason::EntryPoint),
                None,
                &[Rule::R53, Rule::R52],
            );
            return;
        }
        match self.take_entry_reply(d) {
            EntryReply::Qualifies(entry) => {
                // R53: the window starts at the time of the response (the send) and lasts 72 h.
                let length = if era5 { ERA5_ENTRY_POINT_WINDOW_SECONDS } else { ENTRY_POINT_WINDOW_SECONDS };
                let opened_at = d.sent_at.min(t);
                self.entry_window = Some(EntryWindow {
                    opened_at,
                    expires_at: opened_at.plus(length),
                    opened_by: d.message_id.clone(),
                });
                let rules: &[Rule] =
                    if era5 { &[Rule::R53, Rule::R82, Rule::Q3] } else { &[Rule::R53, Rule::Q3] };
                step.entry_window(opened_at, opened_at.plus(length), &entry, rules);
                return;
            }
            EntryReply::TooLate => step.notes.push(Rule::Q3),
            EntryReply::DeniedByProvider => step.notes.push(Rule::E8),
            EntryReply::NotAReply => {}
        }

        let csw_open = self.service_window_open(t);
        match d.classification.class {
            Some(MessageClass::Template(TemplateCategory::Utility)) => {
                if let Some(open) = self.conversations.first() {
                    let opened_by = open.opened_by.clone();
                    step.message(
                        PricingModel::Cbp,
                        PricingCategory::Utility,
                        Charge::Free(FreeReason::PerConversation),
                        Some(opened_by),
                        &[Rule::R56, Rule::Q12],
                    );
                } else if era5 {
                    step.message(
                        PricingModel::Pmp,
                        PricingCategory::Utility,
                        Charge::Billable,
                        None,
                        &[Rule::R51, Rule::R81],
                    );
                } else if csw_open {
                    step.message(
                        PricingModel::Pmp,
                        PricingCategory::Utility,
                        Charge::Free(FreeReason::CustomerServiceWindow),
                        None,
                        &[Rule::R51, Rule::R52, Rule::R1],
                    );
                } else {
                    step.message(
                        PricingModel::Pmp,
                        PricingCategory::Utility,
                        Charge::Billable,
                        None,
                        &[Rule::R51],
                    );
                }
            }
            Some(MessageClass::Template(TemplateCategory::Marketing)) => {
                let category = if d.marketing_lite {
                    PricingCategory::MarketingLite
                } else {
                    PricingCategory::Marketing
                };
                step.message(PricingModel::Pmp, category, Charge::Billable, None, &[Rule::R51]);
            }
            Some(MessageClass::Template(TemplateCategory::Authentication)) => {
                // D7: no customer service window exemption for authentication.
                step.message(
                    PricingModel::Pmp,
                    PricingCategory::Authentication,
                    Charge::Billable,
                    None,
                    &[Rule::R51],
                );
            }
            Some(MessageClass::NonTemplate) if era5 => {
                let pool =
                    step.pool(AllowanceKind::Era5ServiceMessages, step.ctx.contact.phone_number_id.clone());
                step.message(
                    PricingModel::Pmp,
                    PricingCategory::Service,
                    Charge::Allowance(pool),
                    None,
                    &[Rule::R80],
                );
            }
            Some(MessageClass::NonTemplate) => {
                step.message(
                    PricingModel::Pmp,
                    PricingCategory::Service,
                    Charge::Free(FreeReason::NonTemplate),
                    None,
                    &[Rule::R51, Rule::R52],
                );
            }
            None => {}
        }
    }

    /// R59: a message to a group follows per-message pricing, with the group's one customer
    /// service window (any participant's message opens it: the pair's user is the group) and
    /// the group categories. The charge is per participant delivered to; pricing multiplies.
    /// Entry points do not apply: Click-to-WhatsApp ads open one-to-one chats.
    fn group_message(&mut self, step: &mut Step<'_, '_>) {
        let d = step.d;
        let csw_open = self.service_window_open(d.at);
        let era5 = step.era == Era::PaidService;
        let (category, charge, rules): (PricingCategory, Charge, &[Rule]) = match d.classification.class {
            Some(MessageClass::Template(TemplateCategory::Marketing)) => {
                (PricingCategory::GroupMarketing, Charge::Billable, &[Rule::R59, Rule::R51])
            }
            // Era 5 ends the free-in-window utility template for groups as for everyone (R81).
            Some(MessageClass::Template(TemplateCategory::Utility)) if era5 => {
                (PricingCategory::GroupUtility, Charge::Billable, &[Rule::R59, Rule::R81])
            }
            Some(MessageClass::Template(TemplateCategory::Utility)) if csw_open => (
                PricingCategory::GroupUtility,
                Charge::Free(FreeReason::CustomerServiceWindow),
                &[Rule::R59, Rule::R1],
            ),
            Some(MessageClass::Template(TemplateCategory::Utility)) => {
                (PricingCategory::GroupUtility, Charge::Billable, &[Rule::R59, Rule::R51])
            }
            // R59 names no group authentication category: charged as authentication, per
            // participant.
            Some(MessageClass::Template(TemplateCategory::Authentication)) => {
                (PricingCategory::Authentication, Charge::Billable, &[Rule::R59, Rule::R51])
            }
            Some(MessageClass::NonTemplate) if csw_open => (
                PricingCategory::GroupService,
                Charge::Free(FreeReason::CustomerServiceWindow),
                &[Rule::R59, Rule::R1],
            ),
            Some(MessageClass::NonTemplate) => (
                PricingCategory::GroupService,
                Charge::Free(FreeReason::NonTemplate),
                &[Rule::R59, Rule::R51],
            ),
            None => return,
        };
        step.message(PricingModel::Pmp, category, charge, None, rules);
    }
}

/// One delivery being evaluated: builds its facts with the shared context, rules and evidence.
struct Step<'c, 'o> {
    ctx: &'c FoldContext<'c>,
    d: &'c Delivery,
    era: Era,
    out: &'o mut Vec<Fact>,
    /// Rules that shaped the outcome without producing it (e.g. E8, a late reply).
    notes: RulePath,
}

impl Step<'_, '_> {
    fn pool(&self, kind: AllowanceKind, scope: Arc<str>) -> AllowancePool {
        AllowancePool { kind, scope, month: self.ctx.clock.local_month(self.d.at) }
    }

    fn rules(&self, rules: &[Rule]) -> RulePath {
        let mut all = RulePath::new();
        all.extend(rules);
        all.extend(&self.notes);
        all.push(Rule::R4);
        if self.d.classification.source == crate::fact::ClassSource::CategoryChange {
            all.push(Rule::R90);
        }
        all
    }

    fn context(&self, at: Timestamp) -> BillingContext {
        self.ctx.billing(at, self.d.recipient.as_ref())
    }

    /// A message that belongs to an open CBP conversation.
    fn joins(&mut self, category: ConversationCategory, conversation: MessageId, rules: &[Rule]) {
        self.message(
            PricingModel::Cbp,
            PricingCategory::from(category),
            Charge::Free(FreeReason::PerConversation),
            Some(conversation),
            rules,
        );
    }

    /// A new CBP conversation opened by this delivery, and the message in it.
    fn opens(
        &mut self,
        category: ConversationCategory,
        expires_at: Timestamp,
        charge: Charge,
        entry: Option<&PendingEntry>,
        rules: &[Rule],
    ) {
        let d = self.d;
        let mut evidence = Vec::with_capacity(d.evidence.len() + 1);
        evidence.extend(entry.map(|e| e.event_id.clone()));
        evidence.extend(d.evidence.iter().cloned());
        self.out.push(Fact::ConversationOpened(ConversationOpened {
            category,
            era: self.era,
            opened_at: d.at,
            expires_at,
            opened_by: d.message_id.clone(),
            charge,
            entry_point: entry.map(entry_point_ref),
            context: self.context(d.at),
            rules: self.rules(rules),
            evidence,
        }));
        let conversation = Some(d.message_id.clone());
        self.message(
            PricingModel::Cbp,
            PricingCategory::from(category),
            Charge::Free(FreeReason::PerConversation),
            conversation,
            rules,
        );
    }

    /// A PMP free entry point window opened by this delivery (R53), and the message itself.
    fn entry_window(
        &mut self,
        opened_at: Timestamp,
        expires_at: Timestamp,
        entry: &PendingEntry,
        rules: &[Rule],
    ) {
        let d = self.d;
        let mut evidence = Vec::with_capacity(d.evidence.len() + 1);
        evidence.push(entry.event_id.clone());
        evidence.extend(d.evidence.iter().cloned());
        self.out.push(Fact::ConversationOpened(ConversationOpened {
            category: ConversationCategory::ReferralConversion,
            era: self.era,
            opened_at,
            expires_at,
            opened_by: d.message_id.clone(),
            charge: Charge::Free(FreeReason::EntryPoint),
            entry_point: Some(entry_point_ref(entry)),
            context: self.context(opened_at),
            rules: self.rules(rules),
            evidence,
        }));
        self.message(
            PricingModel::Pmp,
            PricingCategory::ReferralConversion,
            Charge::Free(FreeReason::EntryPoint),
            Some(d.message_id.clone()),
            rules,
        );
    }

    fn message(
        &mut self,
        model: PricingModel,
        category: PricingCategory,
        charge: Charge,
        conversation: Option<MessageId>,
        rules: &[Rule],
    ) {
        let d = self.d;
        self.out.push(Fact::MessageBilled(MessageBilled {
            message_id: d.message_id.clone(),
            era: self.era,
            pricing_model: model,
            delivered_at: d.at,
            category,
            charge,
            conversation,
            classification: d.classification.clone(),
            reported: d.reported.clone(),
            participants: d.participants.clone(),
            context: self.context(d.at),
            rules: self.rules(rules),
            evidence: d.evidence.clone(),
        }));
    }
}

fn entry_point_ref(entry: &PendingEntry) -> EntryPointRef {
    EntryPointRef {
        source_id: entry.entry_point.source_id.clone(),
        ctwa_clid: entry.entry_point.ctwa_clid.clone(),
    }
}
