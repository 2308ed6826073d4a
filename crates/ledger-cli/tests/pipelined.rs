//! A large batch is projected in chunks, folded on one thread while the previous chunk is priced
//! and written on another. Whatever the batch size — one record per batch, small batches, or the
//! whole log in one call — the store ends in the same state, every refused record is kept once,
//! and the offset covers the log.

mod common;

use std::path::Path;
use std::sync::Arc;

use ledger_core::LedgerConfig;
use ledger_log::{EmbeddedLog, EmbeddedLogOptions, EventLog, LogRecord};
use ledger_projector::{drain, Projector, PIPELINE_CHUNK};
use ledger_store::{StateDigest, Store, PROJECTOR};

/// Appends the traffic's records with two refusals placed in different chunks: a payload that is
/// not an event, and an event id reused with different content.
fn fill_log(data: &Path) -> u64 {
    let webhooks = ledger_bench::traffic(11, 700, 1_756_684_800);
    let mut batches = common::records(&webhooks);
    let garbage = LogRecord {
        key: b"not-an-event".to_vec(),
        dedupe: [7; 16],
        identity: None,
        payload: b"\xff\xff not protobuf".to_vec(),
        broadcast: false,
    };
    batches.insert(batches.len() / 3, vec![garbage]);
    let mut conflicting = batches[5][0].clone();
    let mut event = ledger_proto::decode_event(&conflicting.payload).expect("event");
    event.event_time.0 += 1;
    conflicting.payload = ledger_proto::encode_event(&event);
    conflicting.dedupe = [9; 16];
    // As a log without an identity index (Kafka's) takes it: the projector must catch it.
    conflicting.identity = None;
    batches.push(vec![conflicting]);

    let log = EmbeddedLog::open(&data.join("log"), EmbeddedLogOptions::default()).expect("log");
    for batch in batches {
        log.append(batch).wait_blocking().expect("append");
    }
    log.end_offset()
}

fn project(data: &Path, batch_size: usize) -> (StateDigest, usize, u64) {
    let log = EmbeddedLog::open(&data.join("log"), EmbeddedLogOptions::default()).expect("log");
    let store = Arc::new(Store::open(&data.join(format!("state-{batch_size}"))).expect("state"));
    let pricing = ledger_server::projection::projection_pricing(Arc::new(ledger_pricing::Pricing::bundled()));
    let mut projector =
        Projector::resume(&log, store.clone(), PROJECTOR, LedgerConfig::default(), pricing, &mut |_, _| {})
            .expect("resume");
    let report = drain(&mut projector, &log, batch_size, log.end_offset(), &mut |_, _| {}).expect("drain");
    assert_eq!(report.refused + report.conflicts, 2, "batch size {batch_size}: {report:?}");
    let letters = store.dead_letters(100).expect("dead letters").len();
    (store.digest().expect("digest"), letters, store.offset(PROJECTOR).expect("offset"))
}

#[test]
fn any_batch_size_gives_one_state_and_keeps_each_refusal_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let end = fill_log(dir.path());
    assert!(end as usize > 2 * PIPELINE_CHUNK, "the whole log spans several chunks: {end}");

    let (one_by_one, letters, offset) = project(dir.path(), 1);
    assert!(one_by_one.events > 0 && one_by_one.live_entries > 0, "{one_by_one:?}");
    assert_eq!((letters, offset), (2, end));
    for batch_size in [64, PIPELINE_CHUNK + 1, usize::MAX] {
        let (digest, letters, offset) = project(dir.path(), batch_size);
        assert_eq!(digest, one_by_one, "batch size {batch_size}: {:?}", digest.differences(&one_by_one));
        assert_eq!((letters, offset), (2, end), "batch size {batch_size}: dead letters, offset");
    }
}
