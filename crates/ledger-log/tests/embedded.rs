//! The embedded log keeps what it acknowledged, in order, once.

use std::time::Duration;

use ledger_log::{Appended, EmbeddedLog, EmbeddedLogOptions, EventLog, LogRecord, StoredRecord};
use proptest::prelude::*;

fn record(n: u8, content: u8) -> LogRecord {
    LogRecord { key: vec![n], dedupe: [n; 16], identity: None, payload: vec![n, content], broadcast: false }
}

fn read_all(log: &EmbeddedLog) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    log.read(0, usize::MAX, &mut out).expect("read");
    out
}

#[test]
fn appends_are_durable_in_order_and_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = EmbeddedLog::open(dir.path(), EmbeddedLogOptions::default()).expect("open");
        let answers = log.append(vec![record(1, 0), record(2, 0)]).wait_blocking().expect("append");
        assert_eq!(answers, vec![Appended::New(0), Appended::New(1)]);
        let answers = log.append(vec![record(3, 0)]).wait_blocking().expect("append");
        assert_eq!(answers, vec![Appended::New(2)]);
        assert_eq!(log.end_offset(), 3);
    }
    let log = EmbeddedLog::open(dir.path(), EmbeddedLogOptions::default()).expect("reopen");
    assert_eq!(log.end_offset(), 3);
    let payloads: Vec<Vec<u8>> = read_all(&log).into_iter().map(|r| r.payload).collect();
    assert_eq!(payloads, vec![vec![1, 0], vec![2, 0], vec![3, 0]]);
    // Re-delivery after the restart is answered with the original offset.
    let answers = log.append(vec![record(2, 0), record(4, 0)]).wait_blocking().expect("append");
    assert_eq!(answers, vec![Appended::Duplicate(1), Appended::New(3)]);
}

#[test]
fn duplicates_within_one_append_are_written_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), EmbeddedLogOptions::default()).expect("open");
    let answers = log.append(vec![record(7, 0), record(7, 0)]).wait_blocking().expect("append");
    assert_eq!(answers, vec![Appended::New(0), Appended::Duplicate(0)]);
    assert_eq!(read_all(&log).len(), 1);
}

#[test]
fn concurrent_appenders_share_groups_and_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log =
        std::sync::Arc::new(EmbeddedLog::open(dir.path(), EmbeddedLogOptions::default()).expect("open"));
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..25u8)
                    .map(|i| {
                        let id = [t, i, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                        let rec = LogRecord {
                            key: vec![t],
                            dedupe: id,
                            identity: None,
                            payload: vec![t, i],
                            broadcast: false,
                        };
                        log.append(vec![rec]).wait_blocking().expect("append")[0].offset()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut offsets: Vec<u64> = threads.into_iter().flat_map(|t| t.join().expect("thread")).collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (0..200).collect::<Vec<u64>>());
    let stored = read_all(&log);
    assert_eq!(stored.len(), 200);
    for r in &stored {
        // Each payload is where its append said it would be.
        let (t, i) = (r.payload[0], r.payload[1]);
        assert!(t < 8 && i < 25);
    }
}

#[test]
fn read_only_view_and_waiting_for_growth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), EmbeddedLogOptions::default()).expect("open");
    assert_eq!(log.wait_beyond(0, Duration::from_millis(10)), 0);
    log.append(vec![record(1, 0)]).wait_blocking().expect("append");
    assert_eq!(log.wait_beyond(0, Duration::from_millis(10)), 1);
    let view = EmbeddedLog::open_read_only(dir.path()).expect("read-only");
    assert_eq!(view.end_offset(), 1);
    assert!(matches!(view.append(vec![record(2, 0)]).wait_blocking(), Err(ledger_log::LogError::Closed)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Whatever the mix of fresh records and re-deliveries, the log holds each distinct record
    /// once, in first-offered order, and every answer points at the record's own payload.
    #[test]
    fn exactly_once_under_redelivery(batches in prop::collection::vec(prop::collection::vec(0u8..20, 1..6), 1..12)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = EmbeddedLog::open(dir.path(), EmbeddedLogOptions { sync: false, ..Default::default() }).expect("open");
        let mut first_seen: Vec<u8> = Vec::new();
        for batch in &batches {
            let records: Vec<LogRecord> = batch.iter().map(|n| record(*n, 9)).collect();
            let answers = log.append(records).wait_blocking().expect("append");
            for (n, answer) in batch.iter().zip(answers) {
                let stored = read_all(&log);
                prop_assert_eq!(&stored[answer.offset() as usize].payload, &vec![*n, 9]);
                if !first_seen.contains(n) { first_seen.push(*n); }
            }
        }
        let stored: Vec<u8> = read_all(&log).into_iter().map(|r| r.payload[0]).collect();
        prop_assert_eq!(stored, first_seen);
    }
}
