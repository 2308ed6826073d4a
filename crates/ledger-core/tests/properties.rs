//! Invariants of the fold (ARCHITECTURE decisions 1, 3, 4), over random multi-contact histories
//! that cross eras, carry entry points, out-of-order/duplicate/failed statuses, statuses without
//! send records, group participants' statuses (R59), late settings and late category changes:
//!
//! - any permutation and any duplication of the events gives the same entries after netting;
//! - the journal nets to exactly the live entries (nothing is edited in place);
//! - re-folding every contact from scratch changes nothing (incremental = from scratch);
//! - evicting contacts to their stored state (events + postings) and loading them back when an
//!   event, an allowance move or an account event needs them gives the very same journal;
//! - a ledger started again from what a store keeps (account events, phone numbers, contact
//!   states, allowance claims written from the entries) continues with the very same journal.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::*;
use ledger_core::{
    ContactKey, ContactStates, DeliveryStatus, EntryAction, Event, Fact, Id128, Ingested, Ledger,
    LedgerConfig, PricingModel, PricingType, ReportedCategory, ReportedPricing, Resolution, SendContent,
    StatesError, StoredClaim, StoredContact, StoredJournal, TemplateCategory, Timestamp, WabaId,
};
use proptest::prelude::*;

const CASES: u32 = 256;

#[derive(Debug, Clone)]
enum Action {
    Inbound {
        quarter: i64,
        via_ad: bool,
    },
    /// Statuses: (kind, delay, group participant). A participant makes the contact a group (R59).
    Send {
        quarter: i64,
        class: u8,
        record: bool,
        statuses: Vec<(u8, i64, Option<u8>)>,
        reported: Option<u8>,
    },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0i64..480, any::<bool>()).prop_map(|(quarter, via_ad)| Action::Inbound { quarter, via_ad }),
        (
            0i64..480,
            0u8..4,
            prop::bool::weighted(0.85),
            prop::collection::vec((0u8..5, 0i64..12, prop::option::weighted(0.3, 0u8..3)), 0..5),
            prop::option::weighted(0.4, 0u8..4),
        )
            .prop_map(|(quarter, class, record, statuses, reported)| Action::Send {
                quarter,
                class,
                record,
                statuses,
                reported
            }),
    ]
}

/// Origins: each era, the night of the per-message switch and the night era 5 began
/// (2026-09-30 20:00 UTC).
const ORIGINS: [i64; 8] = [ERA1, ERA1B, ERA2, ERA3, ERA4, 1_751_241_600, ERA5, 1_790_798_400];

#[derive(Debug, Clone)]
struct History {
    events: Vec<Event>,
    limit: usize,
}

fn history() -> impl Strategy<Value = History> {
    (
        0usize..ORIGINS.len(),
        prop::collection::vec(prop::collection::vec(action(), 1..14), 1..4),
        prop::option::of(prop::sample::select(vec!["America/Sao_Paulo", "Asia/Kolkata", "Pacific/Auckland"])),
        prop::option::of((0i64..480, 0u8..3)),
        1usize..4,
    )
        .prop_map(|(origin, contacts, zone, change, limit)| {
            let t0 = ORIGINS[origin];
            let mut events = Vec::new();
            if let Some(zone) = zone {
                events.extend(Given::at(t0).settings(zone).events);
            }
            for (n, actions) in contacts.iter().enumerate() {
                let mut g = Given::at(t0).for_user(&format!("1555000{n:04}"));
                for action in actions {
                    build(&mut g, action);
                }
                events.extend(g.events);
            }
            if let Some((quarter, to)) = change {
                let to = [
                    TemplateCategory::Marketing,
                    TemplateCategory::Utility,
                    TemplateCategory::Authentication,
                ][usize::from(to)];
                events.push(category_change(Timestamp(t0 + quarter * 900), "utility_template", to));
            }
            History { events, limit }
        })
}

fn class_content(class: u8) -> SendContent {
    match class {
        0 => template(TemplateCategory::Marketing),
        1 => template(TemplateCategory::Utility),
        2 => template(TemplateCategory::Authentication),
        _ => SendContent::NonTemplate { kind: "text".into() },
    }
}

fn build(g: &mut Given, action: &Action) {
    let h = |quarter: i64| quarter as f64 / 4.0;
    match action {
        Action::Inbound { quarter, via_ad: true } => {
            g.user_message_via_ad(h(*quarter));
        }
        Action::Inbound { quarter, via_ad: false } => {
            g.user_message(h(*quarter));
        }
        Action::Send { quarter, class, record, statuses, reported } => {
            let id = g.send(h(*quarter), class_content(*class));
            if !record {
                g.events.pop();
            }
            for (status, delay, participant) in statuses {
                let status = [
                    DeliveryStatus::Sent,
                    DeliveryStatus::Delivered,
                    DeliveryStatus::Read,
                    DeliveryStatus::Failed,
                    DeliveryStatus::Played,
                ][usize::from(*status)];
                let report = reported.map(|r| ReportedPricing {
                    pricing_model: Some(PricingModel::Pmp),
                    category: Some(
                        [
                            ReportedCategory::Marketing,
                            ReportedCategory::Utility,
                            ReportedCategory::Service,
                            ReportedCategory::ReferralConversion,
                        ][usize::from(r)]
                        .clone(),
                    ),
                    pricing_type: Some(if r == 3 {
                        PricingType::FreeEntryPoint
                    } else {
                        PricingType::Regular
                    }),
                    ..ReportedPricing::default()
                });
                match participant {
                    Some(p) => {
                        g.participant_status(&id, &format!("91987654321{p}"), status, h(*quarter) + h(*delay))
                    }
                    None => g.status_reported(&id, status, h(*quarter) + h(*delay), report),
                };
            }
        }
    }
}

fn config(limit: usize) -> LedgerConfig {
    LedgerConfig { allowance_limit: Some(limit), ..LedgerConfig::default() }
}

/// Applies the events in order; returns the ledger and its journal.
fn fold(events: &[Event], limit: usize) -> (Ledger, Vec<ledger_core::Entry>) {
    let mut ledger = Ledger::new(config(limit));
    let mut journal = Vec::new();
    for event in events {
        ledger.apply(event.clone(), &mut journal).expect("generated events are valid");
    }
    (ledger, journal)
}

/// The netted content of a ledger: facts with their verdicts, in a canonical order. Entry ids
/// are left out: they depend on the journal's history (a re-posted fact gets a fresh id).
fn netted(ledger: &Ledger) -> Vec<(Arc<Fact>, Resolution)> {
    let mut live: Vec<(Arc<Fact>, Resolution)> =
        ledger.live_entries().into_iter().map(|e| (e.fact.clone(), e.resolution())).collect();
    live.sort_by_key(|(fact, _)| fact.id());
    live
}

/// Nets the journal: posts minus reversals, which must name live posts.
fn journal_net(journal: &[ledger_core::Entry]) -> Result<Vec<Id128>, String> {
    let mut live: HashMap<Id128, ()> = HashMap::new();
    for entry in journal {
        match entry.action {
            EntryAction::Post => {
                if live.insert(entry.id, ()).is_some() {
                    return Err(format!("entry {} posted twice", entry.id));
                }
            }
            EntryAction::Reverse => {
                let target = entry.reverses.ok_or("reversal without target")?;
                live.remove(&target).ok_or_else(|| format!("reversal of {target}, which is not live"))?;
            }
        }
    }
    let mut ids: Vec<Id128> = live.into_keys().collect();
    ids.sort();
    Ok(ids)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn any_permutation_and_duplication_gives_the_same_entries(
        history in history(),
        seed in any::<u64>(),
        duplicates in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let (reference, _) = fold(&history.events, history.limit);
        let mut shuffled = history.events.clone();
        // A history can be empty (sends without records or statuses): nothing to duplicate.
        for index in duplicates.iter().filter(|_| !history.events.is_empty()) {
            let copy = shuffled[index.index(shuffled.len())].clone();
            shuffled.push(copy);
        }
        shuffle(&mut shuffled, seed);
        let (permuted, _) = fold(&shuffled, history.limit);
        prop_assert_eq!(netted(&permuted), netted(&reference));
    }

    #[test]
    fn journal_nets_to_the_live_entries(history in history(), seed in any::<u64>()) {
        let mut events = history.events.clone();
        shuffle(&mut events, seed);
        let (ledger, journal) = fold(&events, history.limit);
        let mut live: Vec<Id128> = ledger.live_entries().iter().map(|e| e.id).collect();
        live.sort();
        prop_assert_eq!(journal_net(&journal).map_err(TestCaseError::fail)?, live);
    }

    #[test]
    fn refolding_from_scratch_equals_incremental_application(history in history(), seed in any::<u64>()) {
        let mut events = history.events.clone();
        shuffle(&mut events, seed);
        let (mut ledger, _) = fold(&events, history.limit);
        let before = netted(&ledger);
        let corrections = ledger.refold_all();
        prop_assert!(corrections.is_empty(), "re-fold changed {} entries", corrections.len());
        prop_assert_eq!(netted(&ledger), before);
    }
}

/// Contacts evicted from the ledger, as a store keeps them: the events each accepted and, while
/// it is out of memory, its journal.
#[derive(Default)]
struct EvictedStates {
    events: HashMap<(WabaId, ContactKey), Vec<Event>>,
    journals: HashMap<(WabaId, ContactKey), StoredJournal>,
}

impl ContactStates for EvictedStates {
    fn load(&mut self, waba_id: &WabaId, contact: &ContactKey) -> Result<Option<StoredContact>, StatesError> {
        let key = (waba_id.clone(), contact.clone());
        Ok(self
            .journals
            .remove(&key)
            .map(|journal| StoredContact { events: self.events[&key].clone(), journal }))
    }

    fn contacts_of(&mut self, waba_id: &WabaId) -> Result<Vec<ContactKey>, StatesError> {
        Ok(self
            .journals
            .keys()
            .filter(|(waba, _)| waba == waba_id)
            .map(|(_, contact)| contact.clone())
            .collect())
    }

    fn pool_claims(&mut self, _: &ledger_core::AllowancePool) -> Result<Vec<StoredClaim>, StatesError> {
        Ok(Vec::new()) // Pools stay in memory here.
    }
}

/// Everything a store keeps of a ledger, written as the projector writes it: each touched
/// contact's state, account events, phone numbers, and allowance claims put by a posting and
/// deleted by its reversal.
#[derive(Default)]
struct KeptState {
    events: HashMap<(WabaId, ContactKey), Vec<Event>>,
    journals: HashMap<(WabaId, ContactKey), StoredJournal>,
    account_events: Vec<Event>,
    phone_numbers: HashMap<String, WabaId>,
    claims: std::collections::BTreeMap<(ledger_core::AllowancePool, Timestamp, u128), StoredClaim>,
}

impl KeptState {
    /// Writes what an applied event changed, as one projector batch would.
    fn write(&mut self, ledger: &Ledger, event: &Event, ingested: Ingested, entries: &[ledger_core::Entry]) {
        if ingested == Ingested::Created {
            match &event.contact {
                Some(contact) => {
                    self.events
                        .entry((event.waba_id.clone(), contact.clone()))
                        .or_default()
                        .push(event.clone());
                    self.phone_numbers.insert(contact.phone_number_id.to_string(), event.waba_id.clone());
                }
                None => self.account_events.push(event.clone()),
            }
        }
        for entry in entries {
            let ledger_core::Charge::Allowance(pool) = entry.fact.charge() else { continue };
            let context = entry.fact.context();
            let key = (pool.clone(), entry.fact.at(), entry.fact.id());
            match entry.action {
                EntryAction::Post => {
                    let owner = (context.waba_id.clone(), context.contact.clone());
                    let claim = StoredClaim {
                        at: entry.fact.at(),
                        fact_id: entry.fact.id(),
                        units: entry.fact.quantity(),
                        owner,
                    };
                    self.claims.insert(key, claim);
                }
                EntryAction::Reverse => {
                    self.claims.remove(&key);
                }
            }
        }
        for (waba_id, contact) in self.events.keys() {
            if let Some(resident) = ledger.contact(waba_id, contact) {
                self.journals.insert((waba_id.clone(), contact.clone()), resident.stored_journal());
            }
        }
    }

    /// A ledger started from what is kept: account events and phone numbers now, contacts and
    /// pools when the fold asks for them.
    fn restart(&self, config: LedgerConfig) -> Ledger {
        let mut ledger = Ledger::new(config);
        for event in &self.account_events {
            ledger.restore_account_event(event.clone()).expect("kept account events are valid");
        }
        for (phone_number_id, waba_id) in &self.phone_numbers {
            ledger.restore_phone_number(phone_number_id, waba_id.clone());
        }
        ledger
    }
}

impl ContactStates for KeptState {
    fn load(&mut self, waba_id: &WabaId, contact: &ContactKey) -> Result<Option<StoredContact>, StatesError> {
        let key = (waba_id.clone(), contact.clone());
        Ok(self
            .journals
            .get(&key)
            .map(|journal| StoredContact { events: self.events[&key].clone(), journal: journal.clone() }))
    }

    fn contacts_of(&mut self, waba_id: &WabaId) -> Result<Vec<ContactKey>, StatesError> {
        Ok(self.journals.keys().filter(|(waba, _)| waba == waba_id).map(|(_, c)| c.clone()).collect())
    }

    fn pool_claims(&mut self, pool: &ledger_core::AllowancePool) -> Result<Vec<StoredClaim>, StatesError> {
        Ok(self.claims.iter().filter(|((p, _, _), _)| p == pool).map(|(_, claim)| claim.clone()).collect())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn evicted_and_reloaded_contacts_give_the_same_journal(
        history in history(),
        seed in any::<u64>(),
        evictions in any::<u64>(),
    ) {
        let mut events = history.events.clone();
        shuffle(&mut events, seed);
        let (reference, reference_journal) = fold(&events, history.limit);

        let mut ledger = Ledger::new(config(history.limit));
        let mut states = EvictedStates::default();
        let mut journal = Vec::new();
        let mut dice = evictions;
        for event in &events {
            let key = event.contact.clone().map(|c| (event.waba_id.clone(), c));
            let ingested = ledger.apply_with(event.clone(), &mut states, &mut journal).expect("valid events");
            if let (Ingested::Created, Some(key)) = (ingested, &key) {
                states.events.entry(key.clone()).or_default().push(event.clone());
            }
            // Evict about half of the contacts in memory after every event.
            let resident: Vec<(WabaId, ContactKey)> =
                states.events.keys().filter(|(w, c)| ledger.contact(w, c).is_some()).cloned().collect();
            for (waba_id, contact) in resident {
                dice = dice.rotate_left(7) ^ 0x9E37_79B9_7F4A_7C15;
                if dice % 2 == 0 {
                    let stored = ledger.contact(&waba_id, &contact).expect("resident").stored_journal();
                    prop_assert!(ledger.evict(&waba_id, &contact));
                    states.journals.insert((waba_id, contact), stored);
                }
            }
        }
        prop_assert_eq!(journal, reference_journal);
        // What is still out of memory was stored with the postings the reference holds.
        for ((waba_id, contact), stored) in &states.journals {
            prop_assert_eq!(reference.contact(waba_id, contact).map(|c| c.stored_journal()), Some(stored.clone()));
        }
    }

    #[test]
    fn a_ledger_restarted_from_its_kept_state_continues_the_same_journal(
        history in history(),
        seed in any::<u64>(),
        restarts in any::<u64>(),
    ) {
        let mut events = history.events.clone();
        shuffle(&mut events, seed);
        let (_, reference_journal) = fold(&events, history.limit);

        let config = config(history.limit);
        let mut kept = KeptState::default();
        let mut ledger = Ledger::new(config);
        let mut journal = Vec::new();
        let mut dice = restarts;
        for event in &events {
            let before = journal.len();
            let ingested = ledger.apply_with(event.clone(), &mut kept, &mut journal).expect("valid events");
            kept.write(&ledger, event, ingested, &journal[before..]);
            // Start again from the kept state after about a third of the events.
            dice = dice.rotate_left(11) ^ 0x9E37_79B9_7F4A_7C15;
            if dice % 3 == 0 {
                ledger = kept.restart(config);
            }
        }
        prop_assert_eq!(journal, reference_journal);
    }
}

/// A seeded Fisher–Yates shuffle (SplitMix64), so failures reproduce from the printed seed.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    let mut next = || {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}
