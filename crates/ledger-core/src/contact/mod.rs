//! One contact's ledger: its events, merged message states, the pair state after the last
//! evaluated occurrence, and the facts concluded so far.
//!
//! The conclusions are a function of the *set* of events, evaluated in (time, kind, id) order
//! (ARCHITECTURE decision 1). An event whose occurrence falls after everything evaluated so far
//! is applied incrementally; anything else re-folds the contact and reports the facts that
//! disappeared and appeared, which the journal turns into reversals and new entries.

mod message;
pub(crate) mod pair;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::category::{MessageClass, PricingCategory, PricingModel, TemplateCategory};
use crate::era::Era;
use crate::event::{EntryPoint, Event, EventFingerprint, EventId, EventKind, MessageId};
use crate::fact::{Charge, ClassSource, Classification, Fact, FactId};
use crate::journal::{Journal, StoredJournal};
use crate::rules::{Rule, RulePath};
use crate::time::Timestamp;

use message::{MessageState, SendObs, StatusObs};
pub use pair::FoldContext;
use pair::{Delivery, PairState, ENTRY_POINT_REPLY_SECONDS};

/// The order of occurrences within a contact: time, then inbound before delivery (a reply at
/// the same second sees the window the user just opened), then id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct OccurrenceKey {
    at: Timestamp,
    rank: u8,
    id: Arc<str>,
}

const INBOUND_RANK: u8 = 0;
const DELIVERY_RANK: u8 = 1;

#[derive(Debug, Clone)]
struct InboundObs {
    at: Timestamp,
    event_id: EventId,
    entry_point: Option<Arc<EntryPoint>>,
}

/// The result of offering an event to a ledger (ARCHITECTURE decision 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "field", rename_all = "snake_case")]
pub enum Ingested {
    Created,
    Exists,
    /// Same event id, different content: an alert, never a silent overwrite. The first stays.
    ExistsWithDifferent(&'static str),
}

/// Facts that a change of the contact's events removed and added.
#[derive(Debug, Default)]
pub struct FactDiff {
    pub removed: Vec<(FactId, Arc<Fact>)>,
    pub added: Vec<(FactId, Arc<Fact>)>,
}

impl FactDiff {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct ContactLedger {
    /// Every event seen, by id, for idempotent ingestion (the events themselves live on as
    /// observations below).
    seen: foldhash::HashMap<EventId, EventFingerprint>,
    inbound: Vec<InboundObs>,
    messages: foldhash::HashMap<MessageId, MessageState>,
    state: PairState,
    last: Option<OccurrenceKey>,
    facts: Vec<(FactId, Arc<Fact>)>,
    /// The postings of this contact's facts: the ledger's journal, kept with the contact so a
    /// contact's state is one value (its events and its postings).
    pub(crate) journal: Journal,
}

impl ContactLedger {
    /// The contact a stored state describes: its events folded again (no entries come out)
    /// under the account's context, its conclusions those it posted. Where the context
    /// changed since (an account event loads the account's contacts to re-fold them), the next
    /// re-fold reverses what was posted, as it would have in memory.
    pub fn restore(events: Vec<Event>, journal: &StoredJournal, ctx: &FoldContext<'_>) -> ContactLedger {
        let mut events = events;
        // Any order folds to the same state; time order takes the incremental path.
        events.sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
        let mut contact = ContactLedger::default();
        let mut ignored = FactDiff::default();
        for event in events {
            contact.apply(event, ctx, &mut ignored);
        }
        contact.facts = journal.postings.iter().map(|p| (p.fact.id(), Arc::clone(&p.fact))).collect();
        contact.journal = Journal::restore(journal);
        contact
    }

    /// The postings to store with the contact's events.
    pub fn stored_journal(&self) -> StoredJournal {
        self.journal.stored(&self.facts)
    }

    /// The time of the latest event folded in (events are ordered by time, not arrival).
    pub fn latest_event_time(&self) -> Option<Timestamp> {
        self.last.as_ref().map(|key| key.at)
    }

    /// The merged status of a business message (W1), if any status was seen.
    pub fn message_status(&self, message_id: &MessageId) -> Option<crate::event::DeliveryStatus> {
        self.messages.get(message_id)?.final_status()
    }

    /// Offers a contact-scoped event. Account-level events are the ledger's business.
    pub fn apply(&mut self, event: Event, ctx: &FoldContext<'_>, diff: &mut FactDiff) -> Ingested {
        let fingerprint = event.fingerprint();
        match self.seen.entry(event.event_id.clone()) {
            Entry::Occupied(seen) => {
                return match seen.get().first_difference(&fingerprint) {
                    None => Ingested::Exists,
                    Some(field) => Ingested::ExistsWithDifferent(field),
                };
            }
            Entry::Vacant(slot) => {
                slot.insert(fingerprint);
            }
        }
        let Event { event_id, event_time: at, kind, .. } = event;
        match kind {
            EventKind::InboundMessage(inbound) => {
                let obs = InboundObs { at, event_id, entry_point: inbound.entry_point.map(Arc::new) };
                let key = OccurrenceKey { at, rank: INBOUND_RANK, id: obs.event_id.0.clone() };
                let index = self.inbound.partition_point(|p| (p.at, &p.event_id) < (obs.at, &obs.event_id));
                self.inbound.insert(index, obs);
                if self.last.as_ref().is_none_or(|last| *last < key) {
                    let obs = &self.inbound[index];
                    self.state.on_inbound(obs.at, &obs.event_id, obs.entry_point.as_ref());
                    self.last = Some(key);
                } else {
                    self.refold(ctx, diff);
                }
            }
            EventKind::SendRecord(record) => {
                let message_id = record.message_id.clone();
                let before = self.delivery_of(&message_id, ctx);
                let obs = SendObs { event_id, at, record };
                self.messages.entry(message_id.clone()).or_default().add_send(obs);
                self.on_message_changed(&message_id, before, ctx, diff);
            }
            EventKind::MessageStatus(status) => {
                let message_id = status.message_id.clone();
                let obs = StatusObs::new(event_id, at, status);
                let message = self.messages.entry(message_id.clone()).or_default();
                if !message.status_may_change_delivery(&obs) {
                    message.add_status(obs);
                    return Ingested::Created;
                }
                let before = self.delivery_of(&message_id, ctx);
                self.messages.entry(message_id.clone()).or_default().add_status(obs);
                self.on_message_changed(&message_id, before, ctx, diff);
            }
            EventKind::PricingReport(report) => {
                let message_id = report.message_id.clone();
                let before = self.delivery_of(&message_id, ctx);
                self.messages.entry(message_id.clone()).or_default().add_report(
                    at,
                    event_id,
                    report.reported,
                );
                self.on_message_changed(&message_id, before, ctx, diff);
            }
            EventKind::TemplateCategoryChange(_)
            | EventKind::AccountSettings(_)
            | EventKind::VolumeTierUpdate(_) => {
                debug_assert!(false, "account-level events are routed by the ledger");
            }
        }
        Ingested::Created
    }

    fn on_message_changed(
        &mut self,
        message_id: &MessageId,
        before: Option<Delivery>,
        ctx: &FoldContext<'_>,
        diff: &mut FactDiff,
    ) {
        let after = self.delivery_of(message_id, ctx);
        if before == after {
            return;
        }
        match (before, after) {
            (None, Some(delivery)) => {
                let key =
                    OccurrenceKey { at: delivery.at, rank: DELIVERY_RANK, id: delivery.message_id.0.clone() };
                if self.last.as_ref().is_none_or(|last| *last < key) {
                    let mut produced = Vec::new();
                    self.state.on_delivery(ctx, &delivery, &mut produced);
                    self.last = Some(key);
                    for fact in produced {
                        let entry = (fact.id(), Arc::new(fact));
                        self.facts.push(entry.clone());
                        diff.added.push(entry);
                    }
                } else {
                    self.refold(ctx, diff);
                }
            }
            (Some(before), Some(after)) if before.differs_only_in_participants(&after) => {
                self.reach_participants(&before, &after, ctx, diff)
            }
            _ => self.refold(ctx, diff),
        }
    }

    /// A group message reached more participants (R59). Participants never change the pair's
    /// state, so only the message's own fact changes: re-post it with the new participants and
    /// evidence instead of re-folding the group's whole history for every participant's status.
    fn reach_participants(
        &mut self,
        before: &Delivery,
        after: &Delivery,
        ctx: &FoldContext<'_>,
        diff: &mut FactDiff,
    ) {
        // A delivery that opened a conversation or window cites its evidence there too.
        let opened = self.facts.iter().any(
            |(_, fact)| matches!(&**fact, Fact::ConversationOpened(c) if c.opened_by == after.message_id),
        );
        // The message's fact is usually among the latest.
        let position = self.facts.iter().rposition(|(_, fact)| {
            matches!(&**fact, Fact::MessageBilled(m)
                if m.message_id == after.message_id && m.evidence == before.evidence)
        });
        let Some(position) = position.filter(|_| !opened) else {
            return self.refold(ctx, diff);
        };
        let (id, old) = self.facts[position].clone();
        let Fact::MessageBilled(message) = &*old else { unreachable!("matched above") };
        let mut updated = message.clone();
        updated.participants = after.participants.clone();
        updated.evidence = after.evidence.clone();
        let fact = (id, Arc::new(Fact::MessageBilled(updated)));
        self.facts[position] = fact.clone();
        diff.removed.push((id, old));
        diff.added.push(fact);
    }

    /// Re-evaluates everything and reports the difference to what was concluded before: facts
    /// gone or changed are removed, facts new or changed are added (a changed fact is both).
    pub fn refold(&mut self, ctx: &FoldContext<'_>, diff: &mut FactDiff) {
        let (state, last, facts) = self.evaluate(ctx, None);
        self.state = state;
        self.last = last;
        let old: HashMap<FactId, &Arc<Fact>> = self.facts.iter().map(|(id, fact)| (*id, fact)).collect();
        let mut new = Vec::with_capacity(facts.len());
        for fact in facts {
            let id = fact.id();
            match old.get(&id) {
                Some(kept) if ***kept == fact => new.push((id, Arc::clone(kept))),
                _ => new.push((id, Arc::new(fact))),
            }
        }
        let unchanged =
            |id: &FactId, fact: &Arc<Fact>| old.get(id).is_some_and(|kept| Arc::ptr_eq(kept, fact));
        let kept: HashSet<FactId> =
            new.iter().filter(|(id, fact)| unchanged(id, fact)).map(|(id, _)| *id).collect();
        diff.removed.extend(self.facts.iter().filter(|(id, _)| !kept.contains(id)).cloned());
        diff.added.extend(new.iter().filter(|(id, _)| !kept.contains(id)).cloned());
        self.facts = new;
    }

    /// The message's delivery as the rules see it, or `None` while it is not billable yet: not
    /// delivered (R4), or its kind unknown outside era 1 (W3: held until a send record arrives).
    fn delivery_of(&self, message_id: &MessageId, ctx: &FoldContext<'_>) -> Option<Delivery> {
        let message = self.messages.get(message_id)?;
        let delivered = message.delivery()?;
        let (classification, change_event) = message.classify(ctx.catalog);
        if classification.class.is_none() && ctx.clock.era_at(delivered.at) != Era::ConversationsV1 {
            return None;
        }
        let reached = message.delivered_participants();
        let mut evidence = Vec::with_capacity(3 + reached.len());
        evidence.extend(message.send.as_ref().map(|s| s.event_id.clone()));
        evidence.push(delivered.event_id.clone());
        // R59: each participant's charge rests on the status proving its delivery.
        for (_, status) in &reached {
            if status.event_id != delivered.event_id {
                evidence.push(status.event_id.clone());
            }
        }
        evidence.extend(change_event);
        Some(Delivery {
            message_id: message_id.clone(),
            at: delivered.at,
            sent_at: message.sent_at().unwrap_or(delivered.at),
            classification,
            marketing_lite: message.send.as_ref().is_some_and(|s| s.record.marketing_lite),
            business_agent: message.send.as_ref().and_then(|s| s.record.meta_business_agent),
            reported: message.reported().cloned(),
            recipient: message.recipient().cloned(),
            participants: reached.into_iter().map(|(participant, _)| participant.clone()).collect(),
            evidence,
        })
    }

    /// Evaluates occurrences up to and including `upto` (all when `None`) from an empty state.
    fn evaluate(
        &self,
        ctx: &FoldContext<'_>,
        upto: Option<Timestamp>,
    ) -> (PairState, Option<OccurrenceKey>, Vec<Fact>) {
        enum Occurrence<'a> {
            Inbound(&'a InboundObs),
            Delivery(Box<Delivery>),
        }
        let within = |at: Timestamp| upto.is_none_or(|limit| at <= limit);
        let mut occurrences: Vec<(OccurrenceKey, Occurrence<'_>)> =
            Vec::with_capacity(self.inbound.len() + self.messages.len());
        for obs in self.inbound.iter().filter(|o| within(o.at)) {
            let key = OccurrenceKey { at: obs.at, rank: INBOUND_RANK, id: obs.event_id.0.clone() };
            occurrences.push((key, Occurrence::Inbound(obs)));
        }
        for message_id in self.messages.keys() {
            if let Some(delivery) = self.delivery_of(message_id, ctx).filter(|d| within(d.at)) {
                let key = OccurrenceKey { at: delivery.at, rank: DELIVERY_RANK, id: message_id.0.clone() };
                occurrences.push((key, Occurrence::Delivery(Box::new(delivery))));
            }
        }
        occurrences.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut state = PairState::default();
        let mut facts = Vec::new();
        let mut last = None;
        for (key, occurrence) in occurrences {
            match &occurrence {
                Occurrence::Inbound(obs) => state.on_inbound(obs.at, &obs.event_id, obs.entry_point.as_ref()),
                Occurrence::Delivery(delivery) => state.on_delivery(ctx, delivery, &mut facts),
            }
            last = Some(key);
        }
        (state, last, facts)
    }

    /// What the pair may send at `at` and what each kind of send would open or be billed as,
    /// judged from the events whose time is at or before `at`.
    pub fn eligibility(&self, ctx: &FoldContext<'_>, at: Timestamp) -> Eligibility {
        let (mut state, _, _) = self.evaluate(ctx, Some(at));
        state.expire(at);
        let preview = |class: MessageClass| preview_send(&state, ctx, class, at);
        let pending = state
            .pending_entry
            .as_ref()
            .map(|p| p.at.plus(ENTRY_POINT_REPLY_SECONDS))
            .filter(|deadline| at < *deadline);
        let mut free_form = preview(MessageClass::NonTemplate);
        if !state.service_window_open(at) {
            free_form = SendPreview::rejected(&[Rule::R2]);
        }
        Eligibility {
            at,
            era: ctx.clock.era_at(at),
            time_zone: ctx.clock.tz_name().clone(),
            customer_service_window_until: state
                .service_window
                .as_ref()
                .map(|w| w.until)
                .filter(|until| at < *until),
            entry_point_window_until: state.entry_window.as_ref().map(|w| w.expires_at),
            entry_point_reply_deadline: pending,
            open_conversations: state
                .conversations
                .iter()
                .map(|c| OpenConversationView {
                    category: c.category.as_str(),
                    opened_at: c.opened_at,
                    expires_at: c.expires_at,
                    opened_by: c.opened_by.clone(),
                })
                .collect(),
            free_form,
            marketing: preview(MessageClass::Template(TemplateCategory::Marketing)),
            utility: preview(MessageClass::Template(TemplateCategory::Utility)),
            authentication: preview(MessageClass::Template(TemplateCategory::Authentication)),
        }
    }
}

fn preview_send(state: &PairState, ctx: &FoldContext<'_>, class: MessageClass, at: Timestamp) -> SendPreview {
    let mut scratch = state.clone();
    let delivery = Delivery {
        message_id: MessageId::from("(hypothetical)"),
        at,
        sent_at: at,
        classification: Classification {
            class: Some(class),
            source: ClassSource::SendRecord,
            template_name: None,
            template_language: None,
            declared_category: None,
        },
        marketing_lite: false,
        business_agent: None,
        reported: None,
        recipient: None,
        participants: Vec::new(),
        evidence: Vec::new(),
    };
    let mut facts = Vec::new();
    scratch.on_delivery(ctx, &delivery, &mut facts);
    let mut preview = SendPreview { allowed: true, ..SendPreview::default() };
    for fact in facts {
        match fact {
            Fact::ConversationOpened(opened) => {
                preview.opens =
                    Some(OpensView { category: opened.category.as_str(), expires_at: opened.expires_at });
                preview.charge = Some(opened.charge);
                preview.rules = opened.rules;
            }
            Fact::MessageBilled(message) => {
                preview.pricing_model = Some(message.pricing_model);
                preview.category = Some(message.category);
                if preview.opens.is_none() {
                    preview.joins =
                        message.conversation.filter(|_| message.pricing_model == PricingModel::Cbp);
                    preview.charge = Some(message.charge);
                    preview.rules = message.rules;
                }
            }
        }
    }
    preview
}

/// The answer to "what may I send now, and what would it cost?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Eligibility {
    pub at: Timestamp,
    pub era: Era,
    /// The account's time zone: its month and rate card are those of this zone (R6).
    pub time_zone: std::sync::Arc<str>,
    /// R1: open until this instant (exclusive), if open at `at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_service_window_until: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_point_window_until: Option<Timestamp>,
    /// A reply sent before this instant opens a free entry point window (R25, R53).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_point_reply_deadline: Option<Timestamp>,
    pub open_conversations: Vec<OpenConversationView>,
    pub free_form: SendPreview,
    pub marketing: SendPreview,
    pub utility: SendPreview,
    pub authentication: SendPreview,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenConversationView {
    pub category: &'static str,
    pub opened_at: Timestamp,
    pub expires_at: Timestamp,
    pub opened_by: MessageId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpensView {
    pub category: &'static str,
    pub expires_at: Timestamp,
}

/// What one kind of send would do if delivered at the instant asked about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SendPreview {
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_model: Option<PricingModel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<PricingCategory>,
    /// `billable`, `free` with a reason, or an allowance whose use the ledger reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charge: Option<Charge>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens: Option<OpensView>,
    /// The conversation (by its opening message) the send would join.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joins: Option<MessageId>,
    /// Claims already made on the allowance this send would draw on, at the instant asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowance_used: Option<u64>,
    /// Units the allowance grants free a month (R13, R26, R80).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowance_limit: Option<u64>,
    /// The answer in words: charged, free and why, or refused.
    pub summary: String,
    pub rules: RulePath,
}

impl SendPreview {
    /// Whether the send would be charged, once the allowance use is known (`None`: not
    /// allowed, or nothing would be billed, as for a message priced with its conversation).
    pub fn charged(&self) -> Option<bool> {
        match (&self.charge, self.allowance_used, self.allowance_limit) {
            (Some(Charge::Billable), ..) => Some(true),
            (Some(Charge::Free(_)), ..) => Some(false),
            (Some(Charge::Allowance(_)), Some(used), Some(limit)) => Some(used >= limit),
            _ => None,
        }
    }

    pub(crate) fn summarize(&self) -> String {
        if !self.allowed {
            return "not allowed: only templates outside the customer service window (R2)".to_owned();
        }
        let category = self.category.map_or("message", PricingCategory::as_str);
        let what = match &self.opens {
            Some(opens) => format!("opens a {} conversation", opens.category),
            None => format!("counted as {category}"),
        };
        match (&self.charge, self.allowance_used, self.allowance_limit) {
            (Some(Charge::Billable), ..) => format!("charged: {what}"),
            (Some(Charge::Free(reason)), ..) => format!("free ({}): {what}", reason.as_str()),
            (Some(Charge::Allowance(pool)), Some(used), Some(limit)) if used < limit => format!(
                "free within the allowance: {used} of {limit} used in {}, then charged: {what}",
                pool.month
            ),
            (Some(Charge::Allowance(pool)), Some(used), Some(limit)) => {
                format!("charged: {what}; the allowance of {limit} in {} is used ({used})", pool.month)
            }
            _ => format!("nothing billed on its own: {what}"),
        }
    }

    fn rejected(rules: &[Rule]) -> Self {
        let mut path = RulePath::new();
        path.extend(rules);
        SendPreview { allowed: false, rules: path, ..SendPreview::default() }
    }
}
