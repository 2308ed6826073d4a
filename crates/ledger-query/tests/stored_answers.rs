//! Answers read from stored entries equal the same answers computed from a replay of the log:
//! attribution per Click-to-WhatsApp source on the bundled sample (every era's entry point
//! windows), by month and over all time.

use std::sync::Arc;

use ledger_core::{Event, LedgerConfig};
use ledger_log::{EmbeddedLog, EmbeddedLogOptions, EventLog};
use ledger_pricing::{attribution, Pricer, Pricing};
use ledger_projector::{drain, Projector};
use ledger_query::billing::{live_entries, projection_pricing, Replay};
use ledger_query::Queries;
use ledger_store::{Store, PROJECTOR};

#[test]
fn attribution_from_stored_entries_equals_a_replay() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let text = std::fs::read_to_string(root.join("sample-events.jsonl")).expect("sample");
    let events: Vec<Event> = text.lines().map(|line| serde_json::from_str(line).expect("event")).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        EmbeddedLog::open(&dir.path().join("log"), EmbeddedLogOptions { sync: false, ..Default::default() })
            .expect("log"),
    );
    log.append(events.iter().map(ledger_query::ingest::record_of).collect()).wait_blocking().expect("append");
    let store = Arc::new(Store::open(&dir.path().join("state")).expect("store"));
    let pricing = Arc::new(Pricing::bundled());
    let config = LedgerConfig::default();
    let mut projector = Projector::resume(
        &*log,
        store.clone(),
        PROJECTOR,
        config,
        projection_pricing(pricing.clone()),
        &mut |_, _| {},
    )
    .expect("projector");
    // Batches of three: late events re-post entries, so reversals are among the stored ones.
    drain(&mut projector, &*log, 3, log.end_offset(), &mut |_, _| {}).expect("drain");
    let queries = Queries::new(store, pricing.clone()).with_log(log.clone(), config);

    let replay = Replay::of_log(&*log, config, pricing.clone(), None).expect("replay");
    let waba = "102290129340398";
    let mut live = live_entries(&replay.journal);
    live.retain(|e| e.fact.context().waba_id.as_str() == waba);
    let mut non_empty = 0;
    for month in [None, Some("2024-03"), Some("2025-09"), Some("2026-12")] {
        let mut expected = live.clone();
        expected.retain(|e| month.is_none_or(|m| e.fact.context().local_month.to_string() == m));
        // Attribution is independent of entry order (per source, sums and sets).
        let expected = attribution::attribute(&expected, &mut Pricer::new(pricing.clone()));
        let stored = queries.attribution(waba, month).expect("attribution");
        assert_eq!(
            serde_json::to_value(&stored).expect("json"),
            serde_json::to_value(&expected).expect("json"),
            "month {month:?}"
        );
        non_empty += usize::from(!stored.is_empty());
    }
    assert!(non_empty >= 2, "the sample's entry point windows are attributed");
}
