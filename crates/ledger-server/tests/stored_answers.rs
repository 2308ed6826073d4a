//! Answers read from the store equal the same answers computed from a replay of the log:
//! `as_of` eligibility folded from the contact's and the allowance claimants' stored events
//! received by then — windows, previews and the era 5 service allowance's use (R80) while it
//! fills up — and attribution per Click-to-WhatsApp source from stored entries.

use std::sync::Arc;

use ledger_core::{ContactKey, Event, LedgerConfig, Timestamp, WabaId};
use ledger_log::{EmbeddedLog, EmbeddedLogOptions, EventLog};
use ledger_pricing::{attribution, Pricer, Pricing};
use ledger_projector::{drain, Projector};
use ledger_query::billing::{live_entries, Replay};
use ledger_query::Queries;
use ledger_server::projection::projection_pricing;
use ledger_store::{Store, PROJECTOR};

/// A log holding `events` in order and a store the projector wrote from it in batches of
/// `batch` (small batches: late events re-post entries, so reversals are stored, as live).
struct Projected {
    _dir: tempfile::TempDir,
    log: Arc<EmbeddedLog>,
    queries: Queries,
}

fn projected(events: &[Event], config: LedgerConfig, pricing: &Arc<Pricing>, batch: usize) -> Projected {
    projected_restarting(events, config, pricing, batch, None)
}

/// As [`projected`]; with `restart_at`, one projector projects the records before that offset
/// and a new one, resumed from the store, the rest.
fn projected_restarting(
    events: &[Event],
    config: LedgerConfig,
    pricing: &Arc<Pricing>,
    batch: usize,
    restart_at: Option<u64>,
) -> Projected {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        EmbeddedLog::open(&dir.path().join("log"), EmbeddedLogOptions { sync: false, ..Default::default() })
            .expect("log"),
    );
    log.append(events.iter().map(ledger_server::ingest::record_of).collect())
        .wait_blocking()
        .expect("append");
    let store = Arc::new(Store::open(&dir.path().join("state")).expect("store"));
    let mut ledger = None;
    for end in restart_at.into_iter().chain([log.end_offset()]) {
        let mut projector = Projector::resume(
            &*log,
            store.clone(),
            PROJECTOR,
            config,
            projection_pricing(pricing.clone()),
            &mut |_, _| {},
        )
        .expect("projector");
        drain(&mut projector, &*log, batch, end, &mut |_, _| {}).expect("drain");
        ledger = Some(projector.ledger());
    }
    let queries = Queries::new(store, pricing.clone()).with_log(log.clone(), config);
    queries.set_ledger(ledger.expect("a projector ran"));
    Projected { _dir: dir, log, queries }
}

const WABA: &str = "W-as-of";
/// 2026-12-01 00:00 UTC: era 5, paid service beyond the allowance.
const DECEMBER: i64 = 1_796_083_200;

fn event(json: String) -> Event {
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// A day of era 5 traffic on two numbers: users write, get service replies (each a claim on
/// the number's allowance) and some a utility template; delivered in a shuffled order, so
/// late statuses re-fold contacts and move claims across the allowance's boundary.
fn traffic(seed: u64) -> Vec<Event> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut events = Vec::new();
    for c in 0..10 {
        let phone = ["P1", "P2"][c % 2];
        let user = format!("55119000000{c:02}");
        let contact =
            format!(r#""waba_id":"{WABA}","contact":{{"phone_number_id":"{phone}","user_id":"{user}"}}"#);
        let mut t = DECEMBER + rng.i64(0..20 * 3_600);
        events.push(event(format!(
            r#"{{"event_id":"in:{c}","schema_version":1,"event_time":{t},"receive_time":0,"provider":"meta_cloud",{contact},"kind":{{"type":"inbound_message","message_id":"wamid.in.{c}"}}}}"#
        )));
        for r in 0..rng.usize(1..4) {
            t += rng.i64(30..600);
            events.push(event(format!(
                r#"{{"event_id":"st:{c}.{r}","schema_version":1,"event_time":{t},"receive_time":0,"provider":"meta_cloud",{contact},"kind":{{"type":"message_status","message_id":"wamid.out.{c}.{r}","status":"delivered","recipient":"{user}","reported":{{"pricing_model":"PMP","category":"service","pricing_type":"free_customer_service","billable":false}}}}}}"#
            )));
        }
        if rng.bool() {
            t += rng.i64(60..3_600);
            events.push(event(format!(
                r#"{{"event_id":"send:{c}","schema_version":1,"event_time":{t},"receive_time":0,"provider":"meta_cloud",{contact},"kind":{{"type":"send_record","message_id":"wamid.tpl.{c}","recipient":"{user}","content":{{"template":{{"name":"order_update","language":"pt_BR","category":"utility"}}}}}}}}"#
            )));
            events.push(event(format!(
                r#"{{"event_id":"st:tpl.{c}","schema_version":1,"event_time":{},"receive_time":0,"provider":"meta_cloud",{contact},"kind":{{"type":"message_status","message_id":"wamid.tpl.{c}","status":"delivered","recipient":"{user}"}}}}"#,
                t + 3
            )));
        }
    }
    rng.shuffle(&mut events);
    let settings = event(format!(
        r#"{{"event_id":"settings:{WABA}","schema_version":1,"event_time":1672531200,"receive_time":0,"provider":"meta_cloud","waba_id":"{WABA}","kind":{{"type":"account_settings","time_zone":"America/Sao_Paulo","currency":"USD"}}}}"#
    ));
    // The settings arrive a third of the way in: answers before them fold in UTC.
    let third = events.len() / 3;
    events.insert(third, settings);
    // Received in log order, a minute apart (the log is in receive order, as the server appends).
    for (n, event) in events.iter_mut().enumerate() {
        event.receive_time = Timestamp(DECEMBER + 86_400 + 60 * n as i64);
    }
    events
}

/// The contacts the events name, each once, in order.
fn contacts_of(events: &[Event]) -> Vec<ContactKey> {
    let mut contacts: Vec<ContactKey> = events.iter().filter_map(|e| e.contact.clone()).collect();
    contacts.sort();
    contacts.dedup();
    contacts
}

#[test]
fn as_of_eligibility_from_the_store_equals_a_replay_of_the_log() {
    // Four free service messages a month per number, so the allowance fills up (R80).
    let config = LedgerConfig { allowance_limit: Some(4), ..LedgerConfig::default() };
    let pricing = Arc::new(Pricing::bundled());
    for seed in 1..=3 {
        let events = traffic(seed);
        let Projected { log, queries, .. } = &projected(&events, config, &pricing, 5);

        let contacts = contacts_of(&events);
        let mut compared = 0;
        let mut allowance_full = false;
        for as_of in events.iter().step_by(4).map(|e| e.receive_time) {
            let replay = Replay::of_log(&**log, config, pricing.clone(), Some(as_of)).expect("replay");
            for contact in &contacts {
                for at in [DECEMBER + 12 * 3_600, DECEMBER + 23 * 3_600, DECEMBER + 30 * 3_600] {
                    let at = Timestamp(at);
                    let from_store = queries
                        .eligibility_as_of(&contact.phone_number_id, &contact.user_id, at, Some(WABA), as_of)
                        .expect("as_of from the store");
                    let expected = replay.ledger.eligibility(&WabaId::from(WABA), contact, at);
                    let expected = pricing.price_eligibility(WABA, &contact.user_id, expected);
                    assert_eq!(
                        serde_json::to_value(&from_store).expect("json"),
                        serde_json::to_value(&expected).expect("json"),
                        "seed {seed}, contact {contact:?}, at {at}, as_of {as_of}"
                    );
                    let used = serde_json::to_value(&from_store).expect("json")["free_form"]
                        ["allowance_used"]
                        .as_u64()
                        .unwrap_or(0);
                    allowance_full |= used >= 4;
                    compared += 1;
                }
            }
        }
        assert!(compared > 100, "answers compared: {compared}");
        assert!(allowance_full, "seed {seed}: the allowance filled up in some answer");
    }
}

/// A projector started again over its store restores the account stage (allowance pools, tier
/// accruals, phone numbers, account events) without folding the log, and loads contacts and
/// pools as questions need them: every current answer equals the one given before the restart.
#[test]
fn answers_after_a_restart_equal_those_before_it() {
    let config = LedgerConfig { allowance_limit: Some(4), ..LedgerConfig::default() };
    let pricing = Arc::new(Pricing::bundled());
    for seed in 1..=3 {
        let events = traffic(seed);
        let Projected { log, queries, .. } = &projected(&events, config, &pricing, 5);
        let contacts = contacts_of(&events);
        let answers = |queries: &Queries| {
            let mut answers = Vec::new();
            for contact in &contacts {
                for at in [DECEMBER + 12 * 3_600, DECEMBER + 30 * 3_600] {
                    // Without the WABA: the phone number's account is restored too.
                    let answer = queries
                        .eligibility(&contact.phone_number_id, &contact.user_id, Timestamp(at), None)
                        .expect("eligibility");
                    answers.push(serde_json::to_value(answer).expect("json"));
                }
                // The timeline is computed from the contact's state, in memory or stored.
                let timeline =
                    queries.timeline(&contact.phone_number_id, &contact.user_id, None).expect("timeline");
                answers.push(serde_json::to_value(timeline).expect("json"));
            }
            let grants = queries.free_grants(WABA, "2026-12").expect("free grants");
            (answers, grants)
        };
        let before = answers(queries);
        let pools: std::collections::BTreeSet<&str> = before.1.iter().map(|g| g.pool.as_str()).collect();
        assert_eq!(pools.len(), 2, "seed {seed}: free claims on each of the two numbers");
        let full = before.0.iter().any(|a| a["free_form"]["allowance_used"].as_u64().unwrap_or(0) >= 4);
        assert!(full, "seed {seed}: the allowance filled up in some answer");

        let store = queries.store().clone();
        let restarted = Projector::resume(
            &**log,
            store.clone(),
            PROJECTOR,
            config,
            projection_pricing(pricing.clone()),
            &mut |_, _| {},
        )
        .expect("restart");
        assert_eq!(
            restarted.ledger().read().expect("ledger").resident_contacts(),
            0,
            "nothing folded at start"
        );
        let again = Queries::new(store, pricing.clone()).with_log(log.clone(), config);
        again.set_ledger(restarted.ledger());
        let after = answers(&again);
        for (n, (after, before)) in after.0.iter().zip(&before.0).enumerate() {
            assert_eq!(after, before, "seed {seed}: eligibility answer {n}");
        }
        assert_eq!(after.1, before.1, "seed {seed}: free grants");
    }
}

/// Attribution by month and over all time on the bundled sample (every era's entry point
/// windows), projected in batches of three.
#[test]
fn attribution_from_stored_entries_equals_a_replay() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let text = std::fs::read_to_string(root.join("sample-events.jsonl")).expect("sample");
    let events: Vec<Event> = text.lines().map(|line| serde_json::from_str(line).expect("event")).collect();
    let pricing = Arc::new(Pricing::bundled());
    let config = LedgerConfig::default();
    let Projected { log, queries, .. } = &projected(&events, config, &pricing, 3);

    let replay = Replay::of_log(&**log, config, pricing.clone(), None).expect("replay");
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

/// Usage and invoices `as_of` an instant, answered from the store's `history`, equal the same
/// answers replayed from the log — at every receive time, a second either side and the hour
/// boundaries — while receive times sometimes go back (a provider's late retry appended after
/// newer webhooks) and the projector restarts right before such a record: the latest receive
/// time is kept with the offset, so the restarted projector files that record's entries under
/// it, as a replay (which stops at the first record received after the instant) counts them.
#[test]
fn as_of_invoices_and_usage_from_the_history_equal_a_replay_of_the_log() {
    let config = LedgerConfig { allowance_limit: Some(4), ..LedgerConfig::default() };
    let pricing = Arc::new(Pricing::bundled());
    for seed in 1..=3 {
        let mut events = traffic(seed);
        let mut going_back = Vec::new();
        for (n, event) in events.iter_mut().enumerate() {
            // Every seventh record was received three hours before the one appended before it.
            if n % 7 == 6 {
                event.receive_time = Timestamp(event.receive_time.0 - 3 * 3_600);
                going_back.push(n);
            }
        }
        let restart_before = going_back[going_back.len() / 2];

        let Projected { queries, .. } =
            &projected_restarting(&events, config, &pricing, 4, Some(restart_before as u64));
        assert!(queries.store().history_kept().expect("marker"), "a new store keeps its history");

        let mut instants: Vec<i64> =
            events.iter().flat_map(|e| [-1, 0, 1].map(|d| e.receive_time.0 + d)).collect();
        let first = events.iter().map(|e| e.receive_time.0).min().expect("events");
        let last = events.iter().map(|e| e.receive_time.0).max().expect("events");
        instants.extend((first / 3_600..=last / 3_600 + 1).flat_map(|h| [h * 3_600 - 1, h * 3_600]));
        instants.sort_unstable();
        instants.dedup();
        let mut charged = 0;
        for as_of in instants.into_iter().map(Timestamp) {
            // The settings put the account in São Paulo: its first hours are November's.
            for month in ["2026-11", "2026-12"] {
                let invoice = queries.invoice(WABA, month, Some(as_of)).expect("invoice from the history");
                let replayed = queries.invoice_replayed(WABA, month, as_of).expect("replayed invoice");
                assert_eq!(
                    serde_json::to_value(&invoice).expect("json"),
                    serde_json::to_value(&replayed).expect("json"),
                    "seed {seed}, {month} as of {as_of}"
                );
                charged += usize::from(invoice.totals.charged > 0);

                let sorted = |mut view: ledger_query::queries::UsageView| {
                    view.rows.sort_by(|a, b| {
                        (&a.unit, &a.category, &a.market, &a.pricing_type).cmp(&(
                            &b.unit,
                            &b.category,
                            &b.market,
                            &b.pricing_type,
                        ))
                    });
                    serde_json::to_value(view).expect("json")
                };
                let usage = queries.usage_as_of(WABA, month, as_of).expect("usage from the history");
                let replayed = queries.usage_replayed(WABA, month, as_of).expect("replayed usage");
                assert_eq!(sorted(usage), sorted(replayed), "seed {seed}, {month} usage as of {as_of}");
            }
        }
        assert!(
            charged > 0,
            "seed {seed}: some answers charge something (paid service beyond the allowance)"
        );
    }
}
