//! The contact stage keeps every contact's fold state in RocksDB and a bounded set of them in
//! memory. Generated traffic with account events (a new time zone arriving late, templates
//! re-categorized before their sends), late events, a per-number allowance that fills up (R80)
//! and batches that cut chunks in odd places, folded by a projector that evicts every contact it
//! can after each chunk and is started again from the store several times (reading nothing of
//! the log the store already holds), leaves the store a projector holding every contact and
//! never stopping leaves — and the entries the pure in-memory fold (`ledger fold`) concludes.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ledger_core::{
    AccountSettings, Event, EventKind, Ledger, LedgerConfig, TemplateCategory, TemplateCategoryChange,
    Timestamp, WabaId,
};
use ledger_log::{EmbeddedLog, EmbeddedLogOptions, EventLog};
use ledger_projector::{drain, Projector};
use ledger_store::{StateItems, Store, PROJECTOR};
use prost::Message;

/// Few free service messages a month, so the traffic fills the allowance (R80).
fn config() -> LedgerConfig {
    LedgerConfig { allowance_limit: Some(25), ..LedgerConfig::default() }
}

fn account_event(id: &str, at: i64, kind: EventKind) -> Event {
    Event {
        event_id: id.into(),
        schema_version: 1,
        event_time: Timestamp(at),
        receive_time: Timestamp(at),
        provider: "test".into(),
        waba_id: WabaId::from(ledger_bench::WABA_ID),
        contact: None,
        kind,
    }
}

/// The bundled sample (eras 1–4, templates, an entry point) and a month of era-5 traffic,
/// interleaved, with some events held back and the account events placed late.
fn events() -> Vec<Event> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sample-events.jsonl");
    let sample: Vec<Event> = std::fs::read_to_string(root)
        .expect("sample")
        .lines()
        .map(|line| serde_json::from_str(line).expect("event"))
        .collect();
    let traffic: Vec<Event> = common::records(&ledger_bench::traffic(17, 600, 1_796_083_200))
        .into_iter()
        .flatten()
        .map(|record| ledger_proto::decode_event(&record.payload).expect("event"))
        .collect();
    let mut events = Vec::new();
    let stride = traffic.len() / sample.len();
    let mut sample = sample.into_iter();
    for (n, event) in traffic.into_iter().enumerate() {
        if n % stride == 0 {
            events.extend(sample.next());
        }
        events.push(event);
    }
    events.extend(sample);
    // Late events: every 40th event arrives 500 places later.
    let mut late = Vec::new();
    let mut n = 0;
    events.retain(|_| {
        n += 1;
        n % 40 != 0
    });
    for (i, event) in events.clone().into_iter().enumerate().filter(|(i, _)| i % 39 == 0) {
        late.push((i + 500, event));
    }
    let mut with_late = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        with_late.push(event);
        with_late.extend(late.iter().filter(|(at, _)| *at == i).map(|(_, e)| e.clone()));
    }
    let mut events = with_late;
    events.dedup_by(|a, b| a.event_id == b.event_id);
    // A newer time zone, arriving a third of the way in; categories changed before the sends.
    let settings = AccountSettings {
        time_zone: "Asia/Kolkata".into(),
        currency: Some("USD".into()),
        business_id: Some("biz-7741".into()),
    };
    events.insert(
        events.len() / 3,
        account_event("settings:late", 1_700_000_000, EventKind::AccountSettings(settings)),
    );
    for (name, at) in [("welcome_offer", events.len() / 2), ("autumn_sale", events.len() - 10)] {
        let change = TemplateCategoryChange {
            name: name.into(),
            language: "pt_BR".into(),
            category: TemplateCategory::Utility,
            effective_at: Timestamp(1_650_000_000),
        };
        let id = format!("tcu:{name}");
        events.insert(at, account_event(&id, 1_650_000_000, EventKind::TemplateCategoryChange(change)));
    }
    events
}

fn fill_log(data: &Path, events: &[Event]) -> u64 {
    let log = EmbeddedLog::open(&data.join("log"), EmbeddedLogOptions::default()).expect("log");
    for chunk in events.chunks(97) {
        let records = chunk.iter().map(ledger_server::ingest::record_of).collect();
        log.append(records).wait_blocking().expect("append");
    }
    log.end_offset()
}

/// The log as the projector sees it, counting the records it reads below an offset.
struct CountingLog {
    log: Arc<EmbeddedLog>,
    below: u64,
    read_below: std::sync::atomic::AtomicU64,
}

impl EventLog for CountingLog {
    fn append(&self, records: Vec<ledger_log::LogRecord>) -> ledger_log::AppendTicket {
        self.log.append(records)
    }

    fn read(
        &self,
        from: u64,
        max: usize,
        out: &mut Vec<ledger_log::StoredRecord>,
    ) -> Result<(), ledger_log::LogError> {
        let before = out.len();
        self.log.read(from, max, out)?;
        let below = out[before..].iter().filter(|r| r.offset < self.below).count() as u64;
        self.read_below.fetch_add(below, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn end_offset(&self) -> u64 {
        self.log.end_offset()
    }

    fn wait_beyond(&self, offset: u64, timeout: std::time::Duration) -> u64 {
        self.log.wait_beyond(offset, timeout)
    }
}

/// Projects the log into `state`, in batches of `batch`, with `cache` bytes of contacts in
/// memory, stopping and starting again at each of `restarts`; returns the contacts left in
/// memory. Every start after the first must read nothing the store already holds.
fn project(data: &Path, state: &str, batch: usize, cache: usize, restarts: &[u64]) -> (StateItems, usize) {
    let log = Arc::new(EmbeddedLog::open(&data.join("log"), EmbeddedLogOptions::default()).expect("log"));
    let store = Arc::new(Store::open(&data.join(state)).expect("state"));
    let pricing =
        || ledger_server::projection::projection_pricing(Arc::new(ledger_pricing::Pricing::bundled()));
    let end = log.end_offset();
    let mut resident = 0;
    for &stop in restarts.iter().chain([&end]) {
        let stored = store.offset(PROJECTOR).expect("offset");
        let counting = CountingLog { log: log.clone(), below: stored, read_below: Default::default() };
        let mut projector =
            Projector::resume(&counting, store.clone(), PROJECTOR, config(), pricing(), &mut |_, _| {})
                .expect("resume");
        assert_eq!(projector.next_offset(), stored);
        projector.set_state_cache(cache);
        drain(&mut projector, &counting, batch, stop, &mut |_, _| {}).expect("drain");
        let read_again = counting.read_below.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(read_again, 0, "a start at offset {stored} folded {read_again} records of the log again");
        resident = projector.ledger().read().expect("ledger").resident_contacts();
    }
    (store.state_items().expect("items"), resident)
}

/// The pure in-memory fold: its standing entries without ids (as the store's items hold them)
/// and its journal.
fn folded_in_memory(events: &[Event]) -> (BTreeMap<Vec<u8>, u64>, Vec<ledger_core::Entry>) {
    let mut ledger = Ledger::new(config());
    let mut journal = Vec::new();
    for event in events {
        let _ = ledger.apply(event.clone(), &mut journal);
    }
    let mut live = BTreeMap::new();
    for entry in ledger.live_entries() {
        let mut encoded = ledger_proto::v1::Entry::from(&entry);
        encoded.id.clear();
        *live.entry(encoded.encode_to_vec()).or_default() += 1;
    }
    (live, journal)
}

#[test]
fn evicting_contacts_to_the_store_changes_no_answer() {
    let events = events();
    let dir = tempfile::tempdir().expect("tempdir");
    let end = fill_log(dir.path(), &events);
    assert!(end > 3_000, "records: {end}");

    // The reference: every contact in memory, never stopped.
    let (everything, _) = project(dir.path(), "state-everything", 8192, usize::MAX, &[]);
    let contacts = everything.contacts.len();
    assert!(contacts > 500, "contacts: {contacts}");
    // Small batches: nearly every event finds its contact evicted and loads it back. Large
    // ones: chunks folded while the one before is written. Each run stops and starts again
    // from the store (allowance pools, tier accruals and account events included) on the way.
    let runs = [
        (97, usize::MAX, vec![end / 2]),
        (97, 1, vec![end / 5, end / 2 + 77, end - 3]),
        (5_003, 1, vec![end / 3, end / 3 + 1]),
    ];
    for (batch, cache, restarts) in runs {
        let name = format!("state-{batch}-{cache}");
        let (evicting, resident) = project(dir.path(), &name, batch, cache, &restarts);
        if cache == 1 {
            assert!(
                resident < contacts / 4,
                "batch {batch}: {resident} of {contacts} contacts still in memory"
            );
        }
        assert_eq!(evicting, everything, "batch {batch}, cache {cache}, restarts {restarts:?}");
    }
    let (live, journal) = folded_in_memory(&events);
    assert_eq!(everything.live_entries, live);
    // What the traffic was chosen to exercise: paid service messages past the allowance, and
    // postings the late account events reversed.
    let paid_service = journal.iter().filter(|e| {
        e.billable
            && matches!(&*e.fact, ledger_core::Fact::MessageBilled(m) if m.category.as_str() == "service")
    });
    assert!(paid_service.count() > 0, "the allowance filled up");
    let reversed = journal.iter().filter(|e| e.action == ledger_core::EntryAction::Reverse).count();
    assert!(reversed > 50, "reversals: {reversed}");
}
