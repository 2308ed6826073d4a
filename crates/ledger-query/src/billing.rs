//! Money answers: invoices from the `billing` aggregates the projector keeps, and — for audits —
//! the same answers recomputed from the log as it stood at an instant (`as_of`).
//!
//! The projector prices every journal entry as it posts it (through [`PricedProjection`]) and
//! merges the priced line into `billing` (account, month, line → count): an invoice reads a
//! few hundred counters, whatever the month's volume. An as-of answer folds and prices the log's
//! prefix of records received up to the instant — the same code in the same order, so it is the
//! answer the ledger gave once it had projected what it had received by then.

use std::collections::HashSet;
use std::sync::Arc;

use ledger_core::{Entry, EntryAction, EventKind, Ledger, LedgerConfig, Timestamp, VolumeTierUpdate};
use ledger_log::{EventLog, LogError};
use ledger_pricing::invoice::LineBook;
use ledger_pricing::{Pricer, Pricing, StoredTiers};
use ledger_projector::{BillingLine, EntryPricing, ProjectorError};
use ledger_store::{Store, StoreError};

/// Pricing as the projector's hook: markets for usage counters, priced lines for `billing`.
#[derive(Debug)]
pub struct PricedProjection {
    pricer: Pricer,
}

impl EntryPricing for PricedProjection {
    fn markets(&self, entry: &Entry) -> Vec<(String, u64)> {
        self.pricer.markets(entry)
    }

    fn price(&mut self, entry: &Entry) -> Vec<BillingLine> {
        let lines = self.pricer.price(entry).into_iter();
        lines
            .map(|priced| BillingLine {
                waba_id: priced.waba_id,
                month: priced.month.to_string(),
                line: priced.line.encode(),
                quantity: priced.quantity,
            })
            .collect()
    }

    fn take_state_changes(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.pricer.take_tier_changes()
    }

    fn restore(&mut self, store: Arc<Store>) -> Result<(), ProjectorError> {
        let accruals = store.pricing_states(ledger_pricing::ACCRUAL_KEY_PREFIX)?;
        self.pricer
            .keep_tiers_in(Box::new(StoreTiers(store)), accruals)
            .map_err(|e| StoreError::Value { family: ledger_store::ACCOUNTS, reason: e.to_string() }.into())
    }
}

/// Pricing's tier positions in the store, for reversals of postings no longer in memory.
struct StoreTiers(Arc<Store>);

impl StoredTiers for StoreTiers {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.0.pricing_state(key) {
            Ok(value) => value,
            Err(error) => {
                tracing::error!(%error, "reading a stored volume tier position");
                None
            }
        }
    }
}

pub fn projection_pricing(pricing: Arc<Pricing>) -> Box<dyn EntryPricing> {
    let mut pricer = Pricer::new(pricing);
    // A store that keeps pricing's state from its first record wants every change.
    pricer.track_tier_changes();
    Box::new(PricedProjection { pricer })
}

/// A fresh projection pricing per partition, for Kafka mode's group members (tier accruals are
/// rebuilt per partition like its fold state).
pub fn partition_pricing(pricing: Arc<Pricing>) -> ledger_projector::PricingFactory {
    Box::new(move || projection_pricing(pricing.clone()))
}

/// The ledger as the log stood at an instant.
#[derive(Debug)]
pub struct Replay {
    pub ledger: Ledger,
    /// Priced lines of every account and month.
    pub book: LineBook,
    /// The journal in order, reversals included.
    pub journal: Vec<Entry>,
    /// Log records folded.
    pub records: u64,
    /// Meta's volume tier announcements (R55), by WABA: the fold has no use for them, tier
    /// reconciliation does.
    pub tier_updates: Vec<(String, VolumeTierUpdate)>,
}

impl Replay {
    /// Folds and prices the log's records in order, stopping at the first one received after
    /// `as_of` (all of them when `None`).
    pub fn of_log(
        log: &dyn EventLog,
        config: LedgerConfig,
        pricing: Arc<Pricing>,
        as_of: Option<Timestamp>,
    ) -> Result<Replay, LogError> {
        let mut replay = Replay {
            ledger: Ledger::new(config),
            book: LineBook::default(),
            journal: Vec::new(),
            records: 0,
            tier_updates: Vec::new(),
        };
        let mut pricer = Pricer::new(pricing);
        let end = log.end_offset();
        let mut offset = 0;
        let mut records = Vec::new();
        'read: while offset < end {
            records.clear();
            log.read(offset, 65_536, &mut records)?;
            let Some(last) = records.last() else { break };
            let next = last.offset + 1;
            for record in &records {
                // Undecodable records were dead-lettered when first projected; skipped alike.
                let Ok(event) = ledger_proto::decode_event(&record.payload) else { continue };
                if as_of.is_some_and(|t| event.receive_time > t) {
                    break 'read;
                }
                replay.records += 1;
                if let EventKind::VolumeTierUpdate(update) = &event.kind {
                    replay.tier_updates.push((event.waba_id.to_string(), update.clone()));
                }
                let start = replay.journal.len();
                let _ = replay.ledger.apply(event, &mut replay.journal);
                for entry in &replay.journal[start..] {
                    for priced in pricer.price(entry) {
                        replay.book.add(priced);
                    }
                }
            }
            offset = next;
        }
        Ok(replay)
    }
}

/// The entries standing after reversals.
pub fn live_entries(journal: &[Entry]) -> Vec<Entry> {
    let reversed: HashSet<u128> = journal
        .iter()
        .filter(|e| e.action == EntryAction::Reverse)
        .filter_map(|e| e.reverses.map(|r| r.0))
        .collect();
    journal.iter().filter(|e| e.action == EntryAction::Post && !reversed.contains(&e.id.0)).cloned().collect()
}
