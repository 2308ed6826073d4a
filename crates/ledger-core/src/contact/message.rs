//! One business message as the events describe it: send record and statuses, merged per W1–W4.

use std::sync::Arc;

use crate::catalog::TemplateCatalog;
use crate::category::{MessageClass, TemplateCategory};
use crate::event::{DeliveryStatus, EventId, MessageStatus, ReportedPricing, SendContent, SendRecord};
use crate::fact::{ClassSource, Classification};
use crate::time::Timestamp;

#[derive(Debug, Clone)]
pub(crate) struct SendObs {
    pub event_id: EventId,
    pub at: Timestamp,
    pub record: SendRecord,
}

/// What the fold keeps of a status event.
#[derive(Debug, Clone)]
pub(crate) struct StatusObs {
    pub event_id: EventId,
    pub at: Timestamp,
    pub status: DeliveryStatus,
    /// A group status (R59): `recipient` then holds the participant it is about (the group id
    /// is the pair's user already). One slot for both keeps observations as small as before
    /// groups: there are millions of them.
    pub group: bool,
    pub recipient: Option<Arc<str>>,
    /// Shared with the facts that cite it; most statuses carry none.
    pub reported: Option<Arc<ReportedPricing>>,
}

impl StatusObs {
    pub fn new(event_id: EventId, at: Timestamp, status: MessageStatus) -> Self {
        StatusObs {
            event_id,
            at,
            status: status.status,
            group: status.participant.is_some(),
            recipient: status.participant.or(status.recipient),
            reported: status.reported.map(Arc::new),
        }
    }

    /// The group participant the status is about (R59).
    pub fn participant(&self) -> Option<&Arc<str>> {
        self.recipient.as_ref().filter(|_| self.group)
    }

    fn key(&self) -> (Timestamp, u8, &str) {
        (self.at, self.status.progress(), self.event_id.as_str())
    }

    fn has_outcome(&self) -> bool {
        self.reported.as_ref().is_some_and(|r| r.has_outcome())
    }
}

/// Everything known about one message. The merge is a function of the set of observations:
/// the earliest send record, statuses ordered by (timestamp, progress, event id).
#[derive(Debug, Clone, Default)]
pub(crate) struct MessageState {
    pub send: Option<SendObs>,
    pub statuses: Vec<StatusObs>,
    /// Pricing reports outside statuses, by (time, event id).
    pub reports: Vec<(Timestamp, EventId, Arc<ReportedPricing>)>,
}

impl MessageState {
    pub fn add_send(&mut self, obs: SendObs) {
        let earlier = match &self.send {
            None => true,
            Some(kept) => (obs.at, obs.event_id.as_str()) < (kept.at, kept.event_id.as_str()),
        };
        if earlier {
            self.send = Some(obs);
        }
    }

    /// Whether adding `obs` can change what the rules see of this message: its charge instant,
    /// its send time, its recipient, its participants or the provider's report. Most statuses (a `read` after `delivered`, a
    /// `failed`) cannot, and skip re-evaluation.
    pub fn status_may_change_delivery(&self, obs: &StatusObs) -> bool {
        match self.delivery() {
            None => obs.status.proves_delivery(),
            Some(current) => {
                (obs.status.proves_delivery() && obs.key() < current.key())
                    || obs.has_outcome()
                    || (obs.status == DeliveryStatus::Sent && self.send.is_none())
                    || (obs.status.proves_delivery() && self.first_proof_for_participant(obs))
                    || self.changes_recipient(obs)
            }
        }
    }

    /// Whether `obs` becomes the status the recipient number (hence the market, R5) is read from:
    /// no send record names one and `obs` sorts before any status that does, with another value.
    fn changes_recipient(&self, obs: &StatusObs) -> bool {
        if obs.group
            || obs.recipient.is_none()
            || self.send.as_ref().is_some_and(|s| s.record.recipient.is_some())
        {
            return false;
        }
        match self.statuses.iter().find(|s| !s.group && s.recipient.is_some()) {
            None => true,
            Some(current) => obs.key() < current.key() && obs.recipient != current.recipient,
        }
    }

    /// Whether `obs` is the earliest proof of delivery to its group participant (R59): a new
    /// participant, or earlier evidence for a known one.
    fn first_proof_for_participant(&self, obs: &StatusObs) -> bool {
        let Some(participant) = obs.participant() else { return false };
        !self.statuses.iter().any(|s| {
            s.status.proves_delivery() && s.participant() == Some(participant) && s.key() < obs.key()
        })
    }

    /// Group messages (R59): each participant the message reached, sorted, with the first
    /// status (by the merge order) proving its delivery. Empty for one-to-one messages.
    pub fn delivered_participants(&self) -> Vec<(&Arc<str>, &StatusObs)> {
        let mut reached: Vec<(&Arc<str>, &StatusObs)> = Vec::new();
        for status in self.statuses.iter().filter(|s| s.status.proves_delivery()) {
            if let Some(participant) = status.participant() {
                if !reached.iter().any(|(p, _)| *p == participant) {
                    reached.push((participant, status));
                }
            }
        }
        reached.sort_by(|a, b| a.0.cmp(b.0));
        reached
    }

    pub fn add_report(&mut self, at: Timestamp, event_id: EventId, reported: ReportedPricing) {
        let index = self.reports.partition_point(|(t, id, _)| (*t, id) < (at, &event_id));
        self.reports.insert(index, (at, event_id, Arc::new(reported)));
    }

    pub fn add_status(&mut self, obs: StatusObs) {
        let at = self.statuses.partition_point(|probe| probe.key() < obs.key());
        self.statuses.insert(at, obs);
    }

    /// The charge instant's status: the first delivered/read/played by timestamp (R4, W1, W4).
    /// A `failed` status never charges, and a message never proven delivered is never billed.
    pub fn delivery(&self) -> Option<&StatusObs> {
        self.statuses.iter().find(|s| s.status.proves_delivery())
    }

    /// When the business sent it: the send record, else the first `sent` status.
    pub fn sent_at(&self) -> Option<Timestamp> {
        self.send
            .as_ref()
            .map(|s| s.at)
            .or_else(|| self.statuses.iter().find(|s| s.status == DeliveryStatus::Sent).map(|s| s.at))
    }

    /// What the provider reported (W4: pricing sits on one of delivered/read; `sent` carries it
    /// too). The delivery-side report wins; otherwise the first `sent` that has one.
    pub fn reported(&self) -> Option<&Arc<ReportedPricing>> {
        let with_outcome = |s: &&StatusObs| s.has_outcome();
        self.statuses
            .iter()
            .filter(|s| s.status.proves_delivery())
            .find(with_outcome)
            .or_else(|| self.statuses.iter().find(with_outcome))
            .and_then(|s| s.reported.as_ref())
            .or_else(|| self.reports.iter().map(|(_, _, r)| r).find(|r| r.has_outcome()))
    }

    pub fn recipient(&self) -> Option<&Arc<str>> {
        self.send
            .as_ref()
            .and_then(|s| s.record.recipient.as_ref())
            .or_else(|| self.statuses.iter().filter(|s| !s.group).find_map(|s| s.recipient.as_ref()))
            .filter(|r| !r.is_empty())
    }

    /// The merged status (W1): the furthest progress reached; `failed` only when nothing proves
    /// delivery.
    pub fn final_status(&self) -> Option<DeliveryStatus> {
        let furthest = self.statuses.iter().map(|s| s.status).max_by_key(|s| s.progress());
        match furthest {
            Some(DeliveryStatus::Sent) | None
                if self.statuses.iter().any(|s| s.status == DeliveryStatus::Failed) =>
            {
                Some(DeliveryStatus::Failed)
            }
            other => other,
        }
    }

    /// The class billing uses and where it came from. The send record wins over the provider's
    /// report; a category change in force at send time wins over the record's declared category
    /// (R8, R90: Meta's word at time of use).
    pub fn classify(&self, catalog: &TemplateCatalog) -> (Classification, Option<EventId>) {
        if let Some(send) = &self.send {
            return match &send.record.content {
                SendContent::NonTemplate { .. } => (
                    Classification {
                        class: Some(MessageClass::NonTemplate),
                        source: ClassSource::SendRecord,
                        template_name: None,
                        template_language: None,
                        declared_category: None,
                    },
                    None,
                ),
                SendContent::Template(template) => {
                    let changed = catalog.category_at(&template.name, &template.language, send.at);
                    let (category, source, change) = match changed {
                        Some((category, event)) => {
                            (category, ClassSource::CategoryChange, Some(event.clone()))
                        }
                        None => (template.category, ClassSource::SendRecord, None),
                    };
                    let declared: Option<TemplateCategory> =
                        (category != template.category).then_some(template.category);
                    (
                        Classification {
                            class: Some(MessageClass::Template(category)),
                            source,
                            template_name: Some(template.name.clone()),
                            template_language: Some(template.language.clone()),
                            declared_category: declared,
                        },
                        change,
                    )
                }
            };
        }
        let reported = self.reported().and_then(|r| {
            r.category
                .as_ref()
                .and_then(|c| c.message_class())
                .or_else(|| r.conversation_origin.as_ref().and_then(|c| c.message_class()))
        });
        let classification = Classification {
            class: reported,
            source: if reported.is_some() { ClassSource::ProviderReported } else { ClassSource::Unknown },
            template_name: None,
            template_language: None,
            declared_category: None,
        };
        (classification, None)
    }
}
