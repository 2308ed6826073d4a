//! The contact state encoding (`ledger.v1.ContactState`): what is stored reads back unchanged,
//! bytes written by this layout stay readable (frozen below), and what is not a state of a known
//! layout is refused with the reason, never guessed at.

use std::collections::BTreeMap;

use ledger_core::{ContactKey, Event, Ingested, Ledger, LedgerConfig, WabaId};
use ledger_store::contact_state::{decode, encode, CONTACT_STATE_VERSION};
use ledger_store::{ContactEvent, ContactState, ContactStateError, Store};
use proptest::prelude::*;
use prost::Message;

/// The bundled samples folded; every contact's state as the contact stage would store it.
fn sample_states() -> Vec<((WabaId, ContactKey), ContactState, Vec<Event>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut events = Vec::new();
    for file in ["sample-events.jsonl", "service-allowance-2026-12.jsonl"] {
        let text = std::fs::read_to_string(root.join(file)).expect("sample");
        events.extend(text.lines().map(|line| serde_json::from_str::<Event>(line).expect("event")));
    }
    let mut ledger = Ledger::new(LedgerConfig::default());
    let mut journal = Vec::new();
    let mut accepted: BTreeMap<(WabaId, ContactKey), Vec<(u64, Event)>> = BTreeMap::new();
    for (offset, event) in events.into_iter().enumerate() {
        let key = event.contact.clone().map(|c| (event.waba_id.clone(), c));
        if let (Ok(Ingested::Created), Some(key)) = (ledger.apply(event.clone(), &mut journal), key) {
            accepted.entry(key).or_default().push((offset as u64, event));
        }
    }
    accepted
        .into_iter()
        .map(|((waba_id, contact), events)| {
            let state = ContactState {
                events: events
                    .iter()
                    .map(|(offset, e)| ContactEvent {
                        offset: *offset,
                        payload: ledger_proto::encode_event(e),
                    })
                    .collect(),
                journal: ledger.contact(&waba_id, &contact).expect("folded").stored_journal(),
            };
            ((waba_id, contact), state, events.into_iter().map(|(_, e)| e).collect())
        })
        .collect()
}

#[test]
fn every_sample_contact_state_reads_back_unchanged() {
    let states = sample_states();
    assert!(states.len() > 50, "contacts: {}", states.len());
    assert!(states.iter().any(|(_, s, _)| !s.journal.reversals.is_empty()), "some facts were reversed");
    for (key, state, events) in &states {
        let decoded =
            decode(&encode(&state.events, &state.journal)).unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert_eq!(&decoded, state, "{key:?}");
        assert_eq!(&decoded.to_stored().expect("events decode").events, events, "{key:?}");
    }
}

#[test]
fn a_stored_state_is_found_under_its_contact_and_listed_with_its_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let states = sample_states();
    let mut batch = store.batch();
    for ((waba_id, contact), state, _) in &states {
        batch.put_contact_state(
            (waba_id.as_str(), &contact.phone_number_id, &contact.user_id),
            &state.events,
            &state.journal,
        );
    }
    store.commit(batch, "test", 1).expect("commit");
    let ((waba_id, contact), state, _) = &states[states.len() / 2];
    let read =
        store.contact_state(waba_id.as_str(), &contact.phone_number_id, &contact.user_id).expect("read");
    assert_eq!(read.as_ref(), Some(state));
    assert_eq!(
        store.contact_state(waba_id.as_str(), &contact.phone_number_id, "nobody").expect("read"),
        None
    );
    let listed = store.contacts_of(waba_id.as_str()).expect("listed");
    let expected: Vec<(String, String)> = states
        .iter()
        .filter(|((w, _), _, _)| w == waba_id)
        .map(|((_, c), _, _)| (c.phone_number_id.to_string(), c.user_id.to_string()))
        .collect();
    assert_eq!(listed, expected);
}

/// A state of layout 1, written when the layout was introduced: the bundled sample's contact
/// 5511987650002 (17 events, 5 standing postings, one fact reversed once). Never regenerate it:
/// a build that cannot read it cannot read the stores earlier builds wrote.
const FROZEN_V1: &str = include_str!("contact_state_v1.hex");

#[test]
fn bytes_of_layout_1_stay_readable() {
    let bytes = hex_decode(FROZEN_V1.trim());
    let state = decode(&bytes).expect("layout 1 reads");
    assert_eq!(state.events.len(), 17);
    let stored = state.to_stored().expect("its events decode");
    assert!(stored.events.iter().all(|e| e.contact.as_ref().is_some_and(|c| &*c.user_id == "5511987650002")));
    assert!(state.events.windows(2).all(|w| w[0].offset < w[1].offset), "offsets in fold order");
    assert_eq!(state.journal.postings.len(), 5);
    assert!(state.journal.postings.iter().all(|p| &*p.fact.context().contact.user_id == "5511987650002"));
    assert_eq!(state.journal.reversals.len(), 1);
    assert_eq!(state.journal.reversals[0].1, 1);
    // This build still writes layout 1 byte for byte.
    assert_eq!(encode(&state.events, &state.journal), bytes);
}

#[test]
fn a_later_layout_is_refused_by_name() {
    let bytes = hex_decode(FROZEN_V1.trim());
    let mut message = ledger_proto::v1::ContactState::decode(bytes.as_slice()).expect("decodes");
    message.version = CONTACT_STATE_VERSION + 1;
    assert_eq!(decode(&message.encode_to_vec()), Err(ContactStateError::UnknownVersion { found: 2 }));
    message.version = 0;
    assert_eq!(decode(&message.encode_to_vec()), Err(ContactStateError::UnknownVersion { found: 0 }));
}

proptest! {
    /// `encode` writes the events by hand: its bytes are prost's for the same message, whatever
    /// the offsets and payloads (defaults — offset 0, an empty payload — included).
    #[test]
    fn the_hand_written_encoding_is_prosts(
        events in prop::collection::vec((prop_oneof![Just(0u64), any::<u64>()], prop::collection::vec(any::<u8>(), 0..300)), 0..12),
        sample in 0usize..64,
    ) {
        let states = sample_states();
        let journal = &states[sample % states.len()].1.journal;
        let events: Vec<ContactEvent> =
            events.into_iter().map(|(offset, payload)| ContactEvent { offset, payload }).collect();
        let message = ledger_store::contact_state::message(&events, journal);
        prop_assert_eq!(encode(&events, journal), message.encode_to_vec());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}
