//! The store against an in-memory model: whatever sequence of batches is committed (or
//! abandoned before commit), reopening gives exactly the committed events, contact states
//! and offset; usage counters equal the entries counted by hand.

use std::collections::BTreeMap;

use ledger_store::keys::Scope;
use ledger_store::{ContactEvent, Store, PROJECTOR};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Event {
        contact: u8,
        t: i64,
        id: u8,
        payload: u8,
    },
    ContactState {
        contact: u8,
        state: u8,
    },
    Commit {
        offset: u64,
    },
    /// The process dies: the uncommitted batch is lost.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, -5i64..5, 0u8..6, any::<u8>()).prop_map(|(contact, t, id, payload)| Op::Event { contact, t, id, payload }),
        1 => (0u8..4, any::<u8>()).prop_map(|(contact, state)| Op::ContactState { contact, state }),
        2 => (0u64..1000).prop_map(|offset| Op::Commit { offset }),
        1 => Just(Op::Crash),
    ]
}

fn scope(contact: u8) -> Scope {
    Scope::Contact { waba_id: "w".into(), phone_number_id: "p".into(), user_id: format!("u{contact}") }
}

#[derive(Default, Clone)]
struct Model {
    events: BTreeMap<(u8, i64, String), Vec<u8>>,
    contact_states: BTreeMap<u8, u8>,
    offset: u64,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn committed_batches_and_only_they_survive(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut committed = Model::default();
        let mut pending = committed.clone();
        let mut store = Store::open(dir.path()).expect("open");
        let mut batch_ops: Vec<Op> = Vec::new();
        for op in ops {
            match op {
                Op::Event { contact, t, id, payload } => {
                    pending.events.insert((contact, t, format!("e{id}")), vec![payload]);
                    batch_ops.push(op);
                }
                Op::ContactState { contact, state } => {
                    pending.contact_states.insert(contact, state);
                    batch_ops.push(op);
                }
                Op::Commit { offset } => {
                    let mut batch = store.batch();
                    for op in batch_ops.drain(..) {
                        match op {
                            Op::Event { contact, t, id, payload } => batch.put_event(&scope(contact), t, &format!("e{id}"), &[payload]),
                            Op::ContactState { contact, state } => batch.put_contact_state(
                                ("w", "p", &format!("u{contact}")),
                                &[ContactEvent { offset: state.into(), payload: vec![state] }],
                                &Default::default(),
                            ),
                            _ => {}
                        }
                    }
                    store.commit(batch, PROJECTOR, offset).expect("commit");
                    pending.offset = offset;
                    committed = pending.clone();
                }
                Op::Crash => {
                    drop(store);
                    store = Store::open(dir.path()).expect("reopen");
                    batch_ops.clear();
                    pending = committed.clone();
                }
            }
        }
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        prop_assert_eq!(store.offset(PROJECTOR).expect("offset"), committed.offset);
        for contact in 0..4u8 {
            let expected: Vec<Vec<u8>> = committed.events.iter()
                .filter(|((c, _, _), _)| *c == contact)
                .map(|(_, v)| v.clone())
                .collect();
            // Stored in (time, id) order, as the model's BTreeMap orders them.
            prop_assert_eq!(store.events(&scope(contact)).expect("events"), expected);
            let state = store.contact_state("w", "p", &format!("u{contact}")).expect("contact state");
            let state = state.map(|state| state.events.iter().map(|e| e.payload[0]).collect::<Vec<_>>());
            prop_assert_eq!(state, committed.contact_states.get(&contact).map(|s| vec![*s]));
        }
    }
}

#[test]
fn usage_counters_net_postings_and_reversals() {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sample-events.jsonl");
    let text = std::fs::read_to_string(sample).expect("sample");
    let mut ledger = ledger_core::Ledger::new(ledger_core::LedgerConfig::default());
    let mut journal = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: ledger_core::Event = serde_json::from_str(line).expect("event");
        ledger.apply(event, &mut journal).expect("applies");
    }
    assert!(
        journal.iter().any(|e| e.action == ledger_core::EntryAction::Reverse),
        "the sample has corrections"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    // Split the journal over two batches: counters merge across commits.
    let (first, second) = journal.split_at(journal.len() / 2);
    for (n, part) in [first, second].into_iter().enumerate() {
        let mut batch = store.batch();
        for entry in part {
            batch.put_entry(entry, &[("BR".to_owned(), 1)], None);
        }
        store.commit(batch, PROJECTOR, n as u64 + 1).expect("commit");
    }
    // By hand: live entries per (waba, month, unit, category, pricing type).
    let mut expected: BTreeMap<(String, String, String, String, String), i64> = BTreeMap::new();
    for entry in ledger.live_entries() {
        let ctx = entry.fact.context();
        let (unit, category) = match &*entry.fact {
            ledger_core::Fact::ConversationOpened(c) => ("conversation", c.category.as_str()),
            ledger_core::Fact::MessageBilled(m) => ("message", m.category.as_str()),
        };
        let pricing_type = entry.pricing_type.map_or("within_conversation", |p| p.as_str());
        *expected
            .entry((
                ctx.waba_id.to_string(),
                ctx.local_month.to_string(),
                unit.into(),
                category.into(),
                pricing_type.into(),
            ))
            .or_default() += 1;
    }
    let mut stored: BTreeMap<(String, String, String, String, String), i64> = BTreeMap::new();
    let months: std::collections::BTreeSet<(String, String)> =
        expected.keys().map(|k| (k.0.clone(), k.1.clone())).collect();
    for (waba, month) in months {
        for (key, count) in store.usage(&waba, &month).expect("usage") {
            assert_eq!(key.market, "BR");
            stored.insert((key.waba_id, key.month, key.unit, key.category, key.pricing_type), count);
        }
    }
    assert_eq!(stored, expected);
}
