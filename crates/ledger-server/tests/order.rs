//! Duplicate and reordered delivery of the whole fixture stream gives the same state digest
//! (ARCHITECTURE decisions 1 and 4), through the real log and store.

use std::path::Path;
use std::sync::Arc;

use ledger_core::{LedgerConfig, Timestamp};
use ledger_ingest::{Limits, Provider};
use ledger_log::{EmbeddedLog, EmbeddedLogOptions, EventLog};
use ledger_projector::{drain, Projector};
use ledger_store::{StateDigest, Store, PROJECTOR};

/// Every fixture body some adapter accepts, with its provider — except bodies that reuse an
/// earlier fixture's event id with different content (public docs recycle example wamids).
/// Such a pair is a genuine conflict: the ledger keeps the first and reports the second
/// (`ExistsWithDifferent`), so its outcome rightly depends on arrival order.
fn fixture_stream() -> Vec<(Provider, Vec<u8>)> {
    let mut seen: std::collections::HashMap<String, ledger_core::Event> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (provider, body) in all_fixtures() {
        let normalized =
            ledger_ingest::normalize(provider, &body, Timestamp(0), &Limits::default()).expect("normalizes");
        let conflicts = normalized
            .events
            .iter()
            .any(|e| seen.get(e.event_id.as_str()).is_some_and(|first| first.first_difference(e).is_some()));
        if conflicts {
            continue;
        }
        for event in normalized.events {
            seen.entry(event.event_id.to_string()).or_insert(event);
        }
        out.push((provider, body));
    }
    out
}

fn all_fixtures() -> Vec<(Provider, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/webhooks");
    let mut out = Vec::new();
    for (folder, provider) in [
        ("meta-cloud", Provider::MetaCloud),
        ("sinch", Provider::Sinch),
        ("sunshine", Provider::Sunshine),
        ("gupshup", Provider::Gupshup),
    ] {
        let Ok(dir) = std::fs::read_dir(root.join(folder)) else { continue };
        let mut paths: Vec<_> = dir.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
            let body = std::fs::read(&path).expect("read fixture");
            if ledger_server::ingest::prepare(provider, &body, Timestamp(0), &Limits::default())
                .is_ok_and(|(records, _, _)| !records.is_empty())
            {
                out.push((provider, body));
            }
        }
    }
    out
}

fn project(dir: &Path, stream: &[(Provider, Vec<u8>)], batch: usize) -> StateDigest {
    let log = EmbeddedLog::open(&dir.join("log"), EmbeddedLogOptions { sync: false, ..Default::default() })
        .expect("log");
    let store = Arc::new(Store::open(&dir.join("state")).expect("store"));
    let pricing = ledger_server::projection::projection_pricing(std::sync::Arc::new(
        ledger_pricing::Pricing::bundled(),
    ));
    let mut projector =
        Projector::resume(&log, store.clone(), PROJECTOR, LedgerConfig::default(), pricing, &mut |_, _| {})
            .expect("projector");
    for (n, (provider, body)) in stream.iter().enumerate() {
        // Receive times differ between deliveries, as they do for a provider's retries.
        let (records, _, _) = ledger_server::ingest::prepare(
            *provider,
            body,
            Timestamp(1_800_000_000 + n as i64),
            &Limits::default(),
        )
        .expect("valid");
        log.append(records).wait_blocking().expect("append");
        // Project as the stream arrives, so late events reach an already-written state.
        if n % batch == 0 {
            drain(&mut projector, &log, 64, log.end_offset(), &mut |_, _| {}).expect("drain");
        }
    }
    drain(&mut projector, &log, 64, log.end_offset(), &mut |_, _| {}).expect("drain");
    store.digest().expect("digest")
}

#[test]
fn duplicated_and_reordered_fixture_stream_gives_the_same_digest() {
    let stream = fixture_stream();
    assert!(stream.len() >= 30, "fixtures in the stream: {}", stream.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let in_order = project(&dir.path().join("in-order"), &stream, 1);
    assert!(in_order.events > 0 && in_order.live_entries > 0, "{in_order:?}");

    let mut reversed_twice: Vec<_> = stream.iter().rev().cloned().collect();
    reversed_twice.extend(stream.iter().cloned());
    let reordered = project(&dir.path().join("reversed-twice"), &reversed_twice, 3);
    assert_eq!(in_order, reordered, "differences: {:?}", in_order.differences(&reordered));

    let mut rng = fastrand::Rng::with_seed(42);
    let mut shuffled = stream.clone();
    rng.shuffle(&mut shuffled);
    shuffled.extend(stream.iter().step_by(3).cloned());
    let shuffled = project(&dir.path().join("shuffled"), &shuffled, 5);
    assert_eq!(in_order, shuffled, "differences: {:?}", in_order.differences(&shuffled));
}
