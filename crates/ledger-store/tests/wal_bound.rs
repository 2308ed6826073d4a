//! The state's write-ahead log stays within a bound whatever the write pattern: a family written
//! once (a phone number seen in the first batch) must not keep every later WAL file on disk. A
//! disk holding the state then needs room for the data plus a bounded log, and a restart replays
//! at most that much (issue "Nobody gets in where they don't belong", finding 5: a state disk
//! that filled with retained WAL files never recovered once space returned).

use ledger_store::{Scope, Store, PROJECTOR};

/// Bytes of the WAL files (`*.log`) in a store's directory.
fn wal_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .expect("store directory")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "log"))
        .map(|entry| entry.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

#[test]
fn a_family_written_once_does_not_keep_every_later_wal_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state");
    let store = Store::open(&path).expect("store");
    let mut first = store.batch();
    first.put_phone_number("106540352242922", "102290129340398");
    store.commit(first, PROJECTOR, 1).expect("first commit");

    // 640 MiB of events in 1 MiB batches, each value distinct so nothing compresses away.
    let scope = Scope::Contact { waba_id: "w".into(), phone_number_id: "p".into(), user_id: "u".into() };
    let mut largest = 0;
    for n in 0..640u64 {
        let mut batch = store.batch();
        let value: Vec<u8> = (0..(1u64 << 20)).map(|i| (i.wrapping_mul(2654435761) ^ n) as u8).collect();
        batch.put_event(&scope, n as i64, &format!("wamid.{n}"), &value);
        store.commit(batch, PROJECTOR, n + 2).expect("commit");
        largest = largest.max(wal_bytes(&path));
    }
    let bound = ledger_store::MAX_WAL_BYTES + (64 << 20);
    assert!(
        largest <= bound,
        "the WAL reached {} MiB, above its bound of {} MiB",
        largest >> 20,
        bound >> 20
    );
    assert_eq!(store.offset(PROJECTOR).expect("offset"), 641, "every batch landed");
}
