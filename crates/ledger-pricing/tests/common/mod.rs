//! Builds event histories in hours from an origin, folds them with the core and prices the
//! journal in order, as the projector does.

#![allow(dead_code)]

use std::sync::Arc;

use ledger_core::{
    AccountSettings, ContactKey, DeliveryStatus, EntryPoint, Event, EventKind, InboundMessage, Ledger,
    LedgerConfig, LocalMonth, MessageStatus, SendContent, SendRecord, TemplateCategory, TemplateUse,
    Timestamp,
};
use ledger_pricing::invoice::LineBook;
use ledger_pricing::{Invoice, Pricer, Pricing};

pub const HOUR: i64 = 3_600;
/// 2022-09-05 00:00 UTC: era 1, priced by the 2022-02-01 card.
pub const ERA1: i64 = 1_662_336_000;
/// 2024-03-04 00:00 UTC: era 2, priced by the 2023-06-01 card.
pub const ERA2: i64 = 1_709_510_400;
/// 2025-09-01 00:00 UTC: era 4, priced by the 2025-07-01 card.
pub const ERA4: i64 = 1_756_684_800;

#[derive(Debug, Clone)]
pub struct History {
    pub t0: i64,
    pub events: Vec<Event>,
    next: u32,
}

impl History {
    pub fn at(t0: i64) -> History {
        History { t0, events: Vec::new(), next: 0 }
    }

    fn time(&self, hours: f64) -> Timestamp {
        Timestamp(self.t0 + (hours * HOUR as f64).round() as i64)
    }

    fn push(&mut self, waba: &str, contact: Option<ContactKey>, id: String, at: Timestamp, kind: EventKind) {
        self.events.push(Event {
            event_id: id.into(),
            schema_version: 1,
            event_time: at,
            receive_time: at,
            provider: "test".into(),
            waba_id: waba.into(),
            contact,
            kind,
        });
    }

    pub fn settings(&mut self, waba: &str, time_zone: &str) -> &mut Self {
        // The earliest instant an event may carry: before every scenario.
        let at = Timestamp(ledger_core::event::EVENT_TIME_MIN);
        let kind = EventKind::AccountSettings(AccountSettings {
            time_zone: time_zone.to_owned(),
            currency: None,
            business_id: None,
        });
        self.push(waba, None, format!("settings:{waba}"), at, kind);
        self
    }

    /// A user message (with a Click-to-WhatsApp referral when `ad` names a source id).
    pub fn user_message(&mut self, waba: &str, user: &str, hours: f64, ad: Option<&str>) {
        self.next += 1;
        let id = format!("in-{}", self.next);
        let entry_point = ad.map(|source| EntryPoint {
            source_id: Some(source.to_owned()),
            source_type: Some("ad".into()),
            ctwa_clid: Some(format!("clid-{source}")),
            ..EntryPoint::default()
        });
        let kind = EventKind::InboundMessage(InboundMessage { message_id: id.as_str().into(), entry_point });
        let at = self.time(hours);
        self.push(waba, Some(ContactKey::new("pn-1", user)), format!("ev-{id}"), at, kind);
    }

    /// A template (or free-form message when `category` is `None`) sent and delivered at `hours`.
    pub fn delivered(
        &mut self,
        waba: &str,
        user: &str,
        hours: f64,
        category: Option<TemplateCategory>,
    ) -> String {
        let content = match category {
            Some(category) => {
                SendContent::Template(TemplateUse { name: "t".into(), language: "en".into(), category })
            }
            None => SendContent::NonTemplate { kind: "text".into() },
        };
        let id = self.send(waba, user, hours, content);
        self.delivered_status(waba, user, &id, hours, None);
        id
    }

    /// A template sent to a group at `hours` and delivered to each of `reached` (R59): one
    /// status per participant, as Meta reports them, the group id as the pair's user.
    pub fn delivered_to_group(
        &mut self,
        waba: &str,
        group: &str,
        hours: f64,
        category: TemplateCategory,
        reached: &[&str],
    ) -> String {
        let content =
            SendContent::Template(TemplateUse { name: "t".into(), language: "en".into(), category });
        let id = self.send(waba, group, hours, content);
        for participant in reached {
            self.delivered_status(waba, group, &id, hours, Some(participant));
        }
        id
    }

    /// A send record to `user`; returns the message id.
    fn send(&mut self, waba: &str, user: &str, hours: f64, content: SendContent) -> String {
        self.next += 1;
        let id = format!("out-{}", self.next);
        let send = EventKind::SendRecord(SendRecord {
            message_id: id.as_str().into(),
            recipient: Some(user.into()),
            content,
            marketing_lite: false,
            meta_business_agent: None,
        });
        self.push(waba, Some(ContactKey::new("pn-1", user)), format!("send-{id}"), self.time(hours), send);
        id
    }

    /// A `delivered` status of message `id` to `user` (a group's `participant`, R59).
    fn delivered_status(&mut self, waba: &str, user: &str, id: &str, hours: f64, participant: Option<&str>) {
        let status = EventKind::MessageStatus(MessageStatus {
            message_id: id.into(),
            status: DeliveryStatus::Delivered,
            recipient: Some(user.into()),
            participant: participant.map(Into::into),
            errors: Vec::new(),
            reported: None,
        });
        let event_id = match participant {
            Some(p) => format!("status-{id}-{p}"),
            None => format!("status-{id}"),
        };
        self.push(waba, Some(ContactKey::new("pn-1", user)), event_id, self.time(hours), status);
    }

    /// Adds a max-price `pricing.cost` (R84) to the delivered status of message `id`.
    pub fn report_on_delivery(&mut self, id: &str, amount: &str, currency: &str) {
        let event_id = format!("status-{id}");
        let event =
            self.events.iter_mut().find(|e| e.event_id.as_str() == event_id).expect("delivered status");
        if let EventKind::MessageStatus(status) = &mut event.kind {
            status.reported = Some(ledger_core::ReportedPricing {
                pricing_model: Some(ledger_core::PricingModel::Pmp),
                category: Some(ledger_core::ReportedCategory::Marketing),
                pricing_type: Some(ledger_core::PricingType::Regular),
                billable: Some(true),
                cost: Some(ledger_core::ReportedCost { amount: amount.into(), currency: currency.into() }),
                ..ledger_core::ReportedPricing::default()
            });
        }
    }

    /// Folds the history in order and prices the journal as the projector would.
    /// The journal the events fold into, in order.
    pub fn entries(&self) -> Vec<ledger_core::Entry> {
        let mut ledger = Ledger::new(LedgerConfig::default());
        let mut entries = Vec::new();
        for event in &self.events {
            ledger.apply(event.clone(), &mut entries).expect("valid event");
        }
        entries
    }

    pub fn price(&self, pricing: Pricing) -> LineBook {
        let mut pricer = Pricer::new(Arc::new(pricing));
        let mut book = LineBook::default();
        for entry in &self.entries() {
            for priced in pricer.price(entry) {
                book.add(priced);
            }
        }
        book
    }
}

pub fn month(text: &str) -> LocalMonth {
    text.parse().expect("month")
}

pub fn invoice(book: &LineBook, waba: &str, month_text: &str) -> Invoice {
    Invoice::from_lines(waba, month(month_text), book.lines(waba, month(month_text)), "USD")
}

/// (category, market, tier, count, amount) of the invoice's charged lines.
pub fn charged(invoice: &Invoice) -> Vec<(String, String, Option<String>, i64, String)> {
    invoice
        .lines
        .iter()
        .filter(|l| l.amount.is_some_and(|a| a.0 != 0) || l.unit_rate.is_none())
        .map(|l| {
            (
                l.category.clone(),
                l.market.clone(),
                l.tier.clone(),
                l.count,
                l.amount.map_or("unpriced".into(), |a| a.to_string()),
            )
        })
        .collect()
}
