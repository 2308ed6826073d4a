//! Money answers: invoices from the `billing` aggregates the projector keeps, and — for audits —
//! the same answers recomputed from the log as it stood at an instant (`as_of`).
//!
//! The projector prices every journal entry as it posts it (through `ledger-server`'s pricing
//! hook) and merges the priced line into `billing` (account, month, line → count): an invoice
//! reads a few hundred counters, whatever the month's volume. An as-of answer folds and prices the log's
//! prefix of records received up to the instant — the same code in the same order, so it is the
//! answer the ledger gave once it had projected what it had received by then.

use std::collections::HashSet;
use std::sync::Arc;

use ledger_core::{Entry, EntryAction, EventKind, Ledger, LedgerConfig, Timestamp, VolumeTierUpdate};
use ledger_log::{EventLog, LogError};
use ledger_pricing::invoice::LineBook;
use ledger_pricing::{Pricer, Pricing};

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
