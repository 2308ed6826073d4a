//! The derived views the projector writes for touched contacts and messages.

use ledger_core::{ContactKey, DeliveryStatus, Eligibility, Ledger, MessageId, Timestamp, WabaId};
use serde::{Deserialize, Serialize};

/// A contact's timeline as of its latest event: the windows and conversations open then, and
/// what each kind of send would do at that instant. Depends only on the set of the contact's
/// events, so it is the same whatever order they arrived in.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineSnapshot {
    pub waba_id: WabaId,
    pub phone_number_id: String,
    pub user_id: String,
    pub latest_event_at: Timestamp,
    pub state: Eligibility,
}

impl TimelineSnapshot {
    pub fn of(ledger: &Ledger, waba_id: &WabaId, contact: &ContactKey) -> Option<TimelineSnapshot> {
        let latest = ledger.contact(waba_id, contact)?.latest_event_time()?;
        Some(TimelineSnapshot {
            waba_id: waba_id.clone(),
            phone_number_id: contact.phone_number_id.to_string(),
            user_id: contact.user_id.to_string(),
            latest_event_at: latest,
            state: ledger.eligibility(waba_id, contact, latest),
        })
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a snapshot always serializes")
    }
}

/// A business message's merged delivery state (W1: the furthest status wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSnapshot {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<DeliveryStatus>,
}

impl MessageSnapshot {
    pub fn of(
        ledger: &Ledger,
        waba_id: &WabaId,
        contact: &ContactKey,
        message_id: &MessageId,
    ) -> MessageSnapshot {
        MessageSnapshot {
            status: ledger.contact(waba_id, contact).and_then(|c| c.message_status(message_id)),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a message state always serializes")
    }
}
