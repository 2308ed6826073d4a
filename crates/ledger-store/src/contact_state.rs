//! One contact's fold state as the contact stage stores it (`ledger.v1.ContactState`, the
//! `contacts` family): the events the contact accepted, as the log holds them, and its
//! journal's standing postings with how often each fact was reversed. Loading a contact folds
//! its events again ([`ledger_core::ContactStates`]); nothing of the rules engine's internal
//! state is stored, so a fix to the fold needs no migration of stored values.
//!
//! The value carries its layout version. A reader refuses a version it does not know instead of
//! guessing; a later layout comes with an upgrade from the frozen bytes of this one (tests).

use ledger_core::{EntryAction, StoredContact, StoredJournal, StoredPosting};
use ledger_proto::v1;
use prost::Message;

/// The layout [`encode`] writes.
pub const CONTACT_STATE_VERSION: u32 = 1;

/// An event of the contact as the log holds it: where it was read and its encoded
/// `ledger.v1.Event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEvent {
    pub offset: u64,
    pub payload: Vec<u8>,
}

/// A contact's stored state, events still encoded (a write never decodes them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactState {
    pub events: Vec<ContactEvent>,
    pub journal: StoredJournal,
}

/// Why stored bytes are not a contact state this build can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactStateError {
    #[error("not a ledger.v1.ContactState: {0}")]
    Protobuf(String),
    #[error("contact state version {found} is not known to this build (it reads {CONTACT_STATE_VERSION})")]
    UnknownVersion { found: u32 },
    #[error("stored posting {index}: {reason}")]
    Posting { index: usize, reason: String },
    #[error("stored event at log offset {offset}: {reason}")]
    Event { offset: u64, reason: String },
    #[error("reversal count {index}: fact id is not 16 bytes")]
    Reversal { index: usize },
}

/// Encodes a contact's state from its parts, as the contact stage holds them (events encoded,
/// the journal as the core keeps it).
pub fn encode(events: &[ContactEvent], journal: &StoredJournal) -> Vec<u8> {
    encode_with_journal(events, &encode_journal(journal))
}

/// The journal's part of an encoded state ([`encode_with_journal`]): the contact stage keeps it
/// while the contact's postings do not move, so a contact whose new event changed no entry is
/// written without converting and encoding its postings again.
pub fn encode_journal(journal: &StoredJournal) -> Vec<u8> {
    journal_message(journal).encode_to_vec()
}

/// A contact's state from its events and its journal encoded by [`encode_journal`].
///
/// The events are written straight from their payloads rather than copied into a
/// `v1::ContactState` first (the copy was a quarter of the encoding's time): the bytes are
/// those prost writes for the whole message, fields in tag order, defaults left out (the
/// journal's fields, 3 and 4, come last).
pub fn encode_with_journal(events: &[ContactEvent], journal: &[u8]) -> Vec<u8> {
    use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
    let event_len = |event: &ContactEvent| {
        let offset = if event.offset == 0 { 0 } else { 1 + encoded_len_varint(event.offset) };
        let payload = match event.payload.len() {
            0 => 0,
            n => 1 + encoded_len_varint(n as u64) + n,
        };
        offset + payload
    };
    let events_len: usize = events.iter().map(&event_len).map(|n| 1 + encoded_len_varint(n as u64) + n).sum();
    let mut out = Vec::with_capacity(8 + events_len + journal.len());
    encode_key(1, WireType::Varint, &mut out);
    encode_varint(u64::from(CONTACT_STATE_VERSION), &mut out);
    for event in events {
        encode_key(2, WireType::LengthDelimited, &mut out);
        encode_varint(event_len(event) as u64, &mut out);
        if event.offset != 0 {
            encode_key(1, WireType::Varint, &mut out);
            encode_varint(event.offset, &mut out);
        }
        if !event.payload.is_empty() {
            encode_key(2, WireType::LengthDelimited, &mut out);
            encode_varint(event.payload.len() as u64, &mut out);
            out.extend_from_slice(&event.payload);
        }
    }
    out.extend_from_slice(journal);
    out
}

/// The state as a `v1::ContactState` message (what [`encode`] writes, built the plain way).
pub fn message(events: &[ContactEvent], journal: &StoredJournal) -> v1::ContactState {
    v1::ContactState {
        version: CONTACT_STATE_VERSION,
        events: events
            .iter()
            .map(|e| v1::ContactEvent { offset: e.offset, event: e.payload.clone() })
            .collect(),
        ..journal_message(journal)
    }
}

/// The journal's part of a `v1::ContactState` (no version, no events).
fn journal_message(journal: &StoredJournal) -> v1::ContactState {
    v1::ContactState {
        version: 0,
        events: Vec::new(),
        postings: journal.postings.iter().map(|p| v1::Entry::from(&p.entry())).collect(),
        reversals: journal
            .reversals
            .iter()
            .map(|(fact_id, count)| v1::Reversal { fact_id: fact_id.to_be_bytes().to_vec(), count: *count })
            .collect(),
    }
}

pub fn decode(bytes: &[u8]) -> Result<ContactState, ContactStateError> {
    let message = v1::ContactState::decode(bytes).map_err(|e| ContactStateError::Protobuf(e.to_string()))?;
    if message.version != CONTACT_STATE_VERSION {
        return Err(ContactStateError::UnknownVersion { found: message.version });
    }
    let mut postings = Vec::with_capacity(message.postings.len());
    for (index, posting) in message.postings.into_iter().enumerate() {
        let entry = ledger_core::Entry::try_from(posting)
            .map_err(|e| ContactStateError::Posting { index, reason: e.to_string() })?;
        if entry.action != EntryAction::Post {
            return Err(ContactStateError::Posting {
                index,
                reason: "a reversal where a posting belongs".into(),
            });
        }
        postings.push(StoredPosting::of(&entry));
    }
    let mut reversals = Vec::with_capacity(message.reversals.len());
    for (index, reversal) in message.reversals.into_iter().enumerate() {
        let raw: [u8; 16] =
            reversal.fact_id.as_slice().try_into().map_err(|_| ContactStateError::Reversal { index })?;
        reversals.push((u128::from_be_bytes(raw), reversal.count));
    }
    let events =
        message.events.into_iter().map(|e| ContactEvent { offset: e.offset, payload: e.event }).collect();
    Ok(ContactState { events, journal: StoredJournal { postings, reversals } })
}

impl ContactState {
    /// The state as the core loads it: the events decoded.
    pub fn to_stored(&self) -> Result<StoredContact, ContactStateError> {
        let mut events = Vec::with_capacity(self.events.len());
        for event in &self.events {
            let decoded = ledger_proto::decode_event(&event.payload)
                .map_err(|e| ContactStateError::Event { offset: event.offset, reason: e.to_string() })?;
            events.push(decoded);
        }
        Ok(StoredContact { events, journal: self.journal.clone() })
    }
}
