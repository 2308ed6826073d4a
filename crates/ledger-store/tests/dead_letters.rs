//! Dead letters stay within their caps: a source that is refused in a loop drops its own oldest
//! letters, not the others', and all of them together stay under the total.

use ledger_store::{DeadLetter, DeadLetterCaps, Store};

fn letter(source: &str, n: usize) -> DeadLetter {
    DeadLetter::new(source, 400, format!("refusal {n}"), Some("application/json"), &[b'x'; 1000])
}

fn stored_bytes(store: &Store) -> usize {
    store
        .dead_letters(usize::MAX)
        .expect("letters")
        .iter()
        .map(|l| serde_json::to_vec(l).expect("json").len())
        .sum()
}

#[test]
fn a_flooding_source_drops_its_own_oldest_letters_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    store.set_dead_letter_caps(DeadLetterCaps { total_bytes: 40_000, per_source_bytes: 15_000 });
    for n in 0..5 {
        store.put_dead_letter(&letter("quiet", n)).expect("put");
    }
    let mut dropped = 0;
    for n in 0..200 {
        dropped += store.put_dead_letter(&letter("flood", n)).expect("put");
    }
    assert!(dropped > 150, "the flood dropped its own oldest ({dropped})");
    let letters = store.dead_letters(usize::MAX).expect("letters");
    let quiet = letters.iter().filter(|l| l.source == "quiet").count();
    assert_eq!(quiet, 5, "another source's letters are kept");
    let flood: Vec<_> = letters.iter().filter(|l| l.source == "flood").collect();
    assert!(!flood.is_empty() && flood.len() < 15, "{}", flood.len());
    assert_eq!(flood[0].reason, "refusal 199", "the newest is kept");
    assert!(stored_bytes(&store) <= 40_000);

    // Reopened, the store knows what its letters take and keeps to the caps.
    drop(store);
    let store = Store::open(dir.path()).expect("reopen");
    store.set_dead_letter_caps(DeadLetterCaps { total_bytes: 8_000, per_source_bytes: 8_000 });
    store.put_dead_letter(&letter("late", 0)).expect("put");
    assert!(stored_bytes(&store) <= 8_000, "{}", stored_bytes(&store));
    assert_eq!(store.dead_letters(1).expect("letters")[0].source, "late");
}
