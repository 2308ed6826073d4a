//! A given/when/then harness over the pure fold: scenarios are written in hours from an origin
//! T0, as the spec writes them, and read back as conversations and billed messages.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use ledger_core::fact::{ConversationOpened, MessageBilled};
use ledger_core::{
    AccountSettings, ContactKey, DeliveryStatus, EntryPoint, Event, EventKind, InboundMessage, Ingested,
    Ledger, LedgerConfig, MessageId, MessageStatus, ReportedPricing, SendContent, SendRecord,
    TemplateCategory, TemplateUse, Timestamp, WabaId,
};
use ledger_core::{Entry, Fact, TemplateCategoryChange};

pub const WABA: &str = "waba-1";
pub const PHONE: &str = "pn-1";
pub const USER: &str = "15551230001";

/// Monday 2022-09-05 00:00 UTC: era 1, before the 72 h entry point window.
pub const ERA1: i64 = 1_662_336_000;
/// Monday 2023-04-03 00:00 UTC: era 1, with the 72 h entry point window.
pub const ERA1B: i64 = 1_680_480_000;
/// Monday 2024-03-04 00:00 UTC: era 2.
pub const ERA2: i64 = 1_709_510_400;
/// Monday 2025-01-06 00:00 UTC: era 3.
pub const ERA3: i64 = 1_736_121_600;
/// Monday 2025-09-01 00:00 UTC: era 4.
pub const ERA4: i64 = 1_756_684_800;
/// Monday 2026-10-05 00:00 UTC: era 5 when enabled.
pub const ERA5: i64 = 1_791_158_400;

pub const HOUR: i64 = 3_600;

pub fn hours(h: f64) -> i64 {
    (h * HOUR as f64).round() as i64
}

/// The events of one scenario, built in the order the spec lists them.
#[derive(Debug, Clone)]
pub struct Given {
    pub t0: i64,
    pub user: String,
    pub events: Vec<Event>,
    next: u32,
}

impl Given {
    pub fn at(t0: i64) -> Self {
        Given { t0, user: USER.to_owned(), events: Vec::new(), next: 0 }
    }

    pub fn for_user(mut self, user: &str) -> Self {
        self.user = user.to_owned();
        self
    }

    pub fn time(&self, h: f64) -> Timestamp {
        Timestamp(self.t0 + hours(h))
    }

    fn envelope(&mut self, id: String, at: Timestamp, kind: EventKind) -> Event {
        let contact = kind.is_contact_scoped().then(|| ContactKey::new(PHONE, &self.user));
        Event {
            event_id: id.into(),
            schema_version: 1,
            event_time: at,
            receive_time: at,
            provider: "test".into(),
            waba_id: WABA.into(),
            contact,
            kind,
        }
    }

    fn push(&mut self, id: String, at: Timestamp, kind: EventKind) {
        let event = self.envelope(id, at, kind);
        self.events.push(event);
    }

    fn fresh_id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}-{}-{}", self.user, self.next)
    }

    pub fn settings(mut self, time_zone: &str) -> Self {
        let at = Timestamp(self.t0 - 400 * 24 * HOUR);
        let kind = EventKind::AccountSettings(AccountSettings {
            time_zone: time_zone.to_owned(),
            currency: Some("USD".into()),
            business_id: Some("biz-1".into()),
        });
        self.push(format!("settings-{time_zone}"), at, kind);
        self
    }

    /// The user writes (R1).
    pub fn user_message(&mut self, h: f64) -> &mut Self {
        let id = self.fresh_id("in");
        let kind =
            EventKind::InboundMessage(InboundMessage { message_id: id.clone().into(), entry_point: None });
        self.push(id, self.time(h), kind);
        self
    }

    /// The user writes through a Click-to-WhatsApp ad.
    pub fn user_message_via_ad(&mut self, h: f64) -> &mut Self {
        let id = self.fresh_id("in");
        let entry_point = EntryPoint {
            source_id: Some("ad-120226305854810726".into()),
            source_type: Some("ad".into()),
            ctwa_clid: Some("clid-1".into()),
            ..EntryPoint::default()
        };
        let kind = EventKind::InboundMessage(InboundMessage {
            message_id: id.clone().into(),
            entry_point: Some(entry_point),
        });
        self.push(id, self.time(h), kind);
        self
    }

    /// A send record at `h`; returns the message id.
    pub fn send(&mut self, h: f64, content: SendContent) -> String {
        let id = self.fresh_id("wamid");
        let kind = EventKind::SendRecord(SendRecord {
            message_id: id.clone().into(),
            recipient: Some(self.user.as_str().into()),
            content,
            marketing_lite: false,
            meta_business_agent: None,
        });
        self.push(format!("send:{id}"), self.time(h), kind);
        id
    }

    pub fn status(&mut self, message: &str, status: DeliveryStatus, h: f64) -> &mut Self {
        self.status_reported(message, status, h, None)
    }

    pub fn status_reported(
        &mut self,
        message: &str,
        status: DeliveryStatus,
        h: f64,
        reported: Option<ReportedPricing>,
    ) -> &mut Self {
        self.push_status(message, status, h, None, reported)
    }

    /// A status about one participant of a group (R59): the harness's user is the group id.
    pub fn participant_status(
        &mut self,
        message: &str,
        participant: &str,
        status: DeliveryStatus,
        h: f64,
    ) -> &mut Self {
        self.push_status(message, status, h, Some(participant), None)
    }

    fn push_status(
        &mut self,
        message: &str,
        status: DeliveryStatus,
        h: f64,
        participant: Option<&str>,
        reported: Option<ReportedPricing>,
    ) -> &mut Self {
        let name = format!("{status:?}").to_lowercase();
        let id = match participant {
            Some(p) => format!("status:{message}:{name}:{p}:{}", self.time(h).0),
            None => format!("status:{message}:{name}:{}", self.time(h).0),
        };
        let kind = EventKind::MessageStatus(MessageStatus {
            message_id: message.into(),
            status,
            recipient: Some(self.user.as_str().into()),
            participant: participant.map(Into::into),
            errors: Vec::new(),
            reported,
        });
        self.push(id, self.time(h), kind);
        self
    }

    /// A template of `category` sent and delivered at `h` (Meta's examples: delivered = sent).
    pub fn template(&mut self, h: f64, category: TemplateCategory) -> String {
        self.template_sent_delivered(h, h, category)
    }

    pub fn template_sent_delivered(
        &mut self,
        sent: f64,
        delivered: f64,
        category: TemplateCategory,
    ) -> String {
        let id = self.send(sent, template(category));
        self.status(&id, DeliveryStatus::Delivered, delivered);
        id
    }

    /// A free-form (non-template) message sent and delivered at `h`.
    pub fn free_form(&mut self, h: f64) -> String {
        let id = self.send(h, SendContent::NonTemplate { kind: "text".into() });
        self.status(&id, DeliveryStatus::Delivered, h);
        id
    }

    pub fn fold(&self) -> Folded {
        self.fold_with(LedgerConfig::default())
    }

    pub fn fold_with(&self, config: LedgerConfig) -> Folded {
        let mut ledger = Ledger::new(config);
        let mut journal = Vec::new();
        for event in &self.events {
            let ingested = ledger.apply(event.clone(), &mut journal).expect("valid event");
            assert_ne!(ingested, Ingested::ExistsWithDifferent("kind"), "harness ids collide");
        }
        Folded { t0: self.t0, user: self.user.clone(), ledger, journal }
    }

    pub fn contact(&self) -> ContactKey {
        ContactKey::new(PHONE, &self.user)
    }
}

/// Meta re-categorises the harness's `{category}_template` named `name` to `to` from `at` (R90).
pub fn category_change(at: Timestamp, name: &str, to: TemplateCategory) -> Event {
    Event {
        event_id: format!("tcu-{}-{}", at.0, to.as_str()).into(),
        schema_version: 1,
        event_time: at,
        receive_time: at,
        provider: "test".into(),
        waba_id: WABA.into(),
        contact: None,
        kind: EventKind::TemplateCategoryChange(TemplateCategoryChange {
            name: name.into(),
            language: "en_US".into(),
            category: to,
            effective_at: at,
        }),
    }
}

pub fn template(category: TemplateCategory) -> SendContent {
    SendContent::Template(TemplateUse {
        name: format!("{}_template", category.as_str()).into(),
        language: "en_US".into(),
        category,
    })
}

/// The ledger after a scenario, read in the spec's terms.
#[derive(Debug)]
pub struct Folded {
    pub t0: i64,
    pub user: String,
    pub ledger: Ledger,
    pub journal: Vec<Entry>,
}

/// A conversation as (category, opened hour, expiry hour, billable, free reason).
pub type Conv = (String, f64, f64, bool, Option<String>);

impl Folded {
    pub fn h(&self, t: Timestamp) -> f64 {
        (t.0 - self.t0) as f64 / HOUR as f64
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.ledger.live_entries()
    }

    pub fn conversations(&self) -> Vec<Conv> {
        self.entries()
            .iter()
            .filter_map(|e| match &*e.fact {
                Fact::ConversationOpened(c) => Some((
                    c.category.as_str().to_owned(),
                    self.h(c.opened_at),
                    self.h(c.expires_at),
                    e.billable,
                    e.free_reason.map(|r| format!("{r:?}")),
                )),
                Fact::MessageBilled(_) => None,
            })
            .collect()
    }

    pub fn conversation_facts(&self) -> Vec<(Entry, ConversationOpened)> {
        self.entries()
            .into_iter()
            .filter_map(|e| match &*e.fact {
                Fact::ConversationOpened(c) => Some((e.clone(), c.clone())),
                Fact::MessageBilled(_) => None,
            })
            .collect()
    }

    pub fn messages(&self) -> Vec<(Entry, MessageBilled)> {
        self.entries()
            .into_iter()
            .filter_map(|e| match &*e.fact {
                Fact::MessageBilled(m) => Some((e.clone(), m.clone())),
                Fact::ConversationOpened(_) => None,
            })
            .collect()
    }

    pub fn message(&self, id: &str) -> (Entry, MessageBilled) {
        self.messages()
            .into_iter()
            .find(|(_, m)| m.message_id.as_str() == id)
            .unwrap_or_else(|| panic!("no billed message {id}"))
    }

    /// Billable units: conversations under CBP, messages under PMP.
    pub fn billable(&self) -> usize {
        self.entries().iter().filter(|e| e.billable).count()
    }

    pub fn billable_by_category(&self) -> Vec<(String, usize)> {
        let mut counts = std::collections::BTreeMap::new();
        for entry in self.entries().iter().filter(|e| e.billable) {
            let category = match &*entry.fact {
                Fact::ConversationOpened(c) => c.category.as_str(),
                Fact::MessageBilled(m) => m.category.as_str(),
            };
            *counts.entry(category.to_owned()).or_insert(0) += 1;
        }
        counts.into_iter().collect()
    }

    pub fn eligibility(&self, h: f64) -> ledger_core::Eligibility {
        let waba = WabaId::from(WABA);
        self.ledger.eligibility(&waba, &ContactKey::new(PHONE, &self.user), Timestamp(self.t0 + hours(h)))
    }

    pub fn status_of(&self, message: &str) -> Option<DeliveryStatus> {
        self.ledger
            .contact(&WabaId::from(WABA), &ContactKey::new(PHONE, &self.user))?
            .message_status(&MessageId::from(message))
    }
}

pub fn s(text: &str) -> String {
    text.to_owned()
}
