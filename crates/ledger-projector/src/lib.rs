//! The projector: log → fold → store (ARCHITECTURE "Data flow").
//!
//! A batch is read from the log, decoded, folded into the in-memory [`Ledger`] and written as
//! one [`StateBatch`] together with the offset it covers. Late events re-fold their contact
//! inside the core and come out as reversal + new entries, written like any other.
//!
//! The fold state is the store's (ARCHITECTURE "State: where it lives"): each contact's events
//! and postings (the contact stage, [`states`]), the allowance claims, the account events, the
//! phone numbers' accounts and pricing's tier state (the account stage) are written with every
//! chunk. A projector starts from them without folding the log ([`Projector::resume`]):
//! account events and phone numbers are read at start, contacts and allowance pools when first
//! needed. A store written before these were kept is rebuilt at start by folding the
//! already-projected prefix of the log without writing: the same log in the same order yields
//! the same entry ids, so the rebuilt state continues exactly where the store stopped.

mod group;
mod states;

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use ledger_core::{
    ContactKey, Entry, Event, Fact, FoldError, Ingested, Ledger, LedgerConfig, RuleSettings, WabaId,
};
use ledger_log::{EventLog, LogError, StoredRecord};
use ledger_store::{ContactEvent, DeadLetter, Scope, StateBatch, Store, StoreError};

pub use group::{
    partition_path, GroupMember, GroupOptions, OwnedPartition, Ownership, PricingFactory, RoundReport,
    DEFAULT_MAX_POLL_INTERVAL, PARTITION_CONSUMER,
};
pub use states::DEFAULT_STATE_CACHE_BYTES;
use states::{ContactCache, StoreStates};

/// Events folded per hold of the ledger's write lock. Eligibility queries read the same ledger;
/// at 10-15 µs per event under load a hold of 256 events kept them waiting for milliseconds
/// (`ledger-bench http`: p99 11.8 ms; with 32: 8.4-8.9 ms, projector throughput unchanged).
const EVENTS_PER_LOCK: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("publishing entries: {0}")]
    Publish(String),
    /// Kafka mode's group membership: the data directory, a partition's store, positioning.
    #[error("projector group: {0}")]
    Group(String),
    #[error("starting the projector's write thread: {0}")]
    WriteThread(std::io::Error),
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// A stored contact state could not be read back: the store is damaged or was written by
    /// a build that does not match this one.
    #[error("contact state: {0}")]
    ContactState(String),
    /// ARCHITECTURE decision 5: a stale or rewound position is refused loudly.
    #[error(
        "the state covers the log up to offset {stored}, but the log ends at {log_end}: the log is \
         older than the state (restored from an older backup?). Restore the matching log, or rebuild \
         the state from this log with `ledger replay --into <dir>`"
    )]
    LogBehindState { stored: u64, log_end: u64 },
}

/// Why a store cannot be folded or read under the rule settings asked for (ARCHITECTURE
/// decision 2: no store mixes rule sets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error(
        "the state was folded under rule settings [{stored}], this command asks for [{requested}]: \
         run it with the stored settings, or re-fold the state from the log under the new ones \
         (--refold, or `ledger replay --into <dir>`)"
    )]
    Mismatch { stored: RuleSettings, requested: RuleSettings },
    #[error(
        "the state holds {offset} projected records but no rule settings: it was folded before era 5 \
         was applied by default; re-fold it from the log (--refold, or `ledger replay --into <dir>`)"
    )]
    Unrecorded { offset: u64 },
}

/// The rule settings to fold or read `store` under: the recorded ones, which `requested` (given
/// by flag or configuration) must equal; for a store nothing was folded into yet, `requested`
/// or the defaults, recorded unless `read_only`.
pub fn rule_settings_for(
    store: &Store,
    consumer: &str,
    requested: Option<RuleSettings>,
    read_only: bool,
) -> Result<RuleSettings, ProjectorError> {
    match store.rule_settings()? {
        Some(stored) => match requested {
            Some(requested) if requested != stored => Err(RulesError::Mismatch { stored, requested }.into()),
            _ => Ok(stored),
        },
        None => {
            let offset = store.offset(consumer)?;
            if offset > 0 {
                return Err(RulesError::Unrecorded { offset }.into());
            }
            let settings = requested.unwrap_or_default();
            if !read_only {
                store.record_rule_settings(&settings)?;
            }
            Ok(settings)
        }
    }
}

/// One entry's move of an invoice aggregate, as pricing encodes its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingLine {
    pub waba_id: String,
    /// `YYYY-MM` in the account's time zone.
    pub month: String,
    pub line: Vec<u8>,
    pub quantity: i64,
}

/// What pricing contributes to each batch. The projector counts; pricing, injected by the
/// binary, decides markets (R5) and money (ARCHITECTURE decision 6). Entries reach it in journal
/// order, including while the log prefix is re-folded at start, so stateful pricing (volume tiers)
/// is rebuilt exactly.
pub trait EntryPricing: Send {
    /// The markets of the entry's recipients, with how many recipients each (one, or a group
    /// message's participants, R59), for the usage counters.
    fn markets(&self, entry: &Entry) -> Vec<(String, u64)>;
    /// The entry's priced invoice lines (several for a group message across markets).
    fn price(&mut self, entry: &Entry) -> Vec<BillingLine>;
    /// Pricing's own state (volume tier accruals) changed since the last call, as keys and
    /// values pricing encodes (`None`: deleted): written with the chunk priced.
    fn take_state_changes(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        Vec::new()
    }
    /// Continues from pricing's state as `store` keeps it, instead of being handed the
    /// entries of the log's prefix again.
    fn restore(&mut self, _store: Arc<Store>) -> Result<(), ProjectorError> {
        Ok(())
    }
}

/// Counting without pricing: every recipient under `unknown`, no invoice lines.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unpriced;

impl EntryPricing for Unpriced {
    fn markets(&self, entry: &Entry) -> Vec<(String, u64)> {
        let recipients = match &*entry.fact {
            Fact::MessageBilled(message) => message.quantity(),
            Fact::ConversationOpened(_) => 1,
        };
        vec![("unknown".to_owned(), recipients)]
    }

    fn price(&mut self, _entry: &Entry) -> Vec<BillingLine> {
        Vec::new()
    }
}

/// For deployments and tests without pricing.
pub fn unpriced() -> Box<dyn EntryPricing> {
    Box::new(Unpriced)
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub records: usize,
    pub created: usize,
    pub duplicates: usize,
    pub conflicts: usize,
    pub refused: usize,
    pub entries: usize,
    pub next_offset: u64,
}

/// Folds the log into the store.
pub struct Projector {
    ledger: Arc<RwLock<Ledger>>,
    store: Arc<Store>,
    consumer: String,
    next_offset: u64,
    pricing: Box<dyn EntryPricing>,
    /// Asked when a write fails whether to try it again (see [`Projector::retry_writes`]).
    write_retry: Option<Box<WriteRetry>>,
    /// The contacts in memory; `None` for a store whose contact states were not written from
    /// its first record (older stores): everything stays in memory and no state is written.
    cache: Option<ContactCache>,
    /// Whether claims, phone numbers and pricing's state are written (stores whose account
    /// state was kept from the first record).
    account_states: bool,
    /// Whether usage and billing moves are kept in `history` by receive time (stores that
    /// kept it from the first record).
    history: bool,
    /// The latest receive time among the records projected: what a replay as of an instant
    /// compares with (it stops at the first record received after the instant).
    received_by: i64,
}

/// Says, for a failed write of the state and how many attempts it took, whether to try the same
/// write again; it waits before answering as it sees fit.
pub type WriteRetry = dyn FnMut(&ledger_store::StoreError, u32) -> bool + Send;

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector").field("next_offset", &self.next_offset).finish_non_exhaustive()
    }
}

/// A record and its decoded event (the core consumes the event; the write needs the record).
struct Decoded<'a> {
    record: &'a StoredRecord,
    event: Event,
}

impl Projector {
    /// A projector over `store` that resumes at the store's offset for `consumer`, after
    /// folding the log's prefix before it into memory. `progress(done, total)` is called as
    /// the prefix is folded.
    pub fn resume(
        log: &dyn EventLog,
        store: Arc<Store>,
        consumer: &str,
        config: LedgerConfig,
        pricing: Box<dyn EntryPricing>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Projector, ProjectorError> {
        // The settings folded under must be the store's own (recorded here for a new store).
        rule_settings_for(&store, consumer, Some(config.rules), store.is_read_only())?;
        let resume_at = store.offset(consumer)?;
        let log_end = log.end_offset();
        if log_end < resume_at {
            return Err(ProjectorError::LogBehindState { stored: resume_at, log_end });
        }
        let states_kept = match store.contact_states_kept()? {
            true => true,
            false if resume_at == 0 && !store.is_read_only() => {
                store.record_contact_states_kept()?;
                true
            }
            false => {
                tracing::warn!(
                    "this state was folded before contact states were stored: every contact stays in \
                     memory; re-fold it (--refold, or `ledger replay --into <dir>`) to bound memory"
                );
                false
            }
        };
        let account_states = states_kept
            && match store.account_states_kept()? {
                true => true,
                false if resume_at == 0 && !store.is_read_only() => {
                    store.record_account_states_kept()?;
                    true
                }
                false => {
                    tracing::warn!(
                        "this state was folded before allowance claims and tier accruals were stored: \
                         it is rebuilt from the log at every start; re-fold it (--refold, or \
                         `ledger replay --into <dir>`) to start at once"
                    );
                    false
                }
            };
        let history = match store.history_kept()? {
            true => true,
            false if resume_at == 0 && !store.is_read_only() => {
                store.record_history_kept()?;
                true
            }
            // As-of usage and invoices of such a store are replayed from the log.
            false => false,
        };
        let received_by = store.received_by(consumer)?.unwrap_or(i64::MIN);
        let mut projector = Projector {
            ledger: Arc::new(RwLock::new(Ledger::new(config))),
            store,
            consumer: consumer.to_owned(),
            next_offset: 0,
            pricing,
            write_retry: None,
            cache: states_kept.then(|| ContactCache::new(Some(DEFAULT_STATE_CACHE_BYTES))),
            account_states,
            history,
            received_by,
        };
        if account_states {
            projector.restore_account_stage()?;
            projector.next_offset = resume_at;
            progress(resume_at, resume_at);
            return Ok(projector);
        }
        let mut records = Vec::new();
        while projector.next_offset < resume_at {
            records.clear();
            let want = (resume_at - projector.next_offset).min(65_536) as usize;
            log.read(projector.next_offset, want, &mut records)?;
            let Some(last) = records.last() else { break };
            let next = last.offset + 1;
            let decoded = decode_all(&records, &mut |_, _| {});
            let mut ledger = projector.ledger.write().unwrap_or_else(PoisonError::into_inner);
            let mut entries = Vec::new();
            for item in decoded {
                // Refusals were dead-lettered when first projected.
                let _ = ledger.apply(item.event, &mut entries);
                // Already stored: only pricing's own state (tier accruals) is rebuilt.
                for entry in entries.drain(..) {
                    projector.pricing.price(&entry);
                }
            }
            drop(ledger);
            projector.next_offset = next;
            progress(next, resume_at);
        }
        // Pricing's state as the prefix left it is in memory; this store keeps none.
        projector.pricing.take_state_changes();
        if projector.cache.is_some() {
            // The store holds every contact as the prefix left it: they load when needed.
            projector.ledger.write().unwrap_or_else(PoisonError::into_inner).evict_all_contacts();
        }
        Ok(projector)
    }

    /// Starts from the account stage's stored state: every account event and phone number
    /// now (a few per account), pricing's accruals; contacts and pools load when needed.
    fn restore_account_stage(&mut self) -> Result<(), ProjectorError> {
        let mut ledger = self.ledger.write().unwrap_or_else(PoisonError::into_inner);
        for raw in self.store.account_events()? {
            let event = ledger_proto::decode_event(&raw)
                .map_err(|e| ProjectorError::ContactState(format!("a stored account event: {e}")))?;
            let event_id = event.event_id.clone();
            if let Err(error) = ledger.restore_account_event(event) {
                // Only events the fold accepted are stored: this build reads it otherwise.
                tracing::warn!(event_id = %event_id, %error, "a stored account event is refused now");
            }
        }
        for (phone_number_id, waba_id) in self.store.phone_numbers()? {
            ledger.restore_phone_number(&phone_number_id, WabaId::from(waba_id.as_str()));
        }
        drop(ledger);
        self.pricing.restore(self.store.clone())
    }

    /// Bytes of contacts kept in memory in front of the store (default
    /// [`DEFAULT_STATE_CACHE_BYTES`]).
    pub fn set_state_cache(&mut self, bytes: usize) {
        if let Some(cache) = &mut self.cache {
            cache.set_budget(bytes);
        }
    }

    pub fn ledger(&self) -> Arc<RwLock<Ledger>> {
        self.ledger.clone()
    }

    /// Retries a failed write of the state (a full disk, say) while `retry` says so, instead of
    /// failing the batch: memory never runs ahead of the store, so the projector can go on
    /// once the write lands.
    pub fn retry_writes(&mut self, retry: Box<WriteRetry>) {
        self.write_retry = Some(retry);
    }

    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Projects up to `max` records from the log; returns what it did (records = 0 when the
    /// log has nothing new).
    pub fn step(&mut self, log: &dyn EventLog, max: usize) -> Result<BatchReport, ProjectorError> {
        let mut records = Vec::with_capacity(max.min(65_536));
        log.read(self.next_offset, max, &mut records)?;
        self.project(&records)
    }

    /// Projects records that follow the current position, in one write.
    pub fn project(&mut self, records: &[StoredRecord]) -> Result<BatchReport, ProjectorError> {
        self.project_publishing(records, &mut |_| Ok(()))
    }

    /// As [`Projector::project`], handing the batch's entries to `publish` before the write that
    /// moves the offset past them: if the write never happens the batch is projected again and
    /// the same entries (same ids) are published again — at least once, never lost. A `publish`
    /// error fails the batch before its write.
    ///
    /// A large batch is projected in chunks of [`PIPELINE_CHUNK`] records, each written with its
    /// own offset: while one chunk is priced and written on a second thread, the next is folded.
    /// When this returns the whole batch is in the store. After an error, memory may be ahead of
    /// the store; the caller stops and a new projector resumes from the store's offset.
    pub fn project_publishing(
        &mut self,
        records: &[StoredRecord],
        publish: &mut dyn FnMut(&[Entry]) -> Result<(), ProjectorError>,
    ) -> Result<BatchReport, ProjectorError> {
        let started = Instant::now();
        let Some(last) = records.last() else {
            return Ok(BatchReport { next_offset: self.next_offset, ..BatchReport::default() });
        };
        let mut report =
            BatchReport { records: records.len(), next_offset: last.offset + 1, ..Default::default() };
        let mut never = |_: &ledger_store::StoreError, _: u32| false;
        let retry: &mut (dyn FnMut(&ledger_store::StoreError, u32) -> bool + Send) =
            match &mut self.write_retry {
                Some(retry) => &mut **retry,
                None => &mut never,
            };
        let committed = self.cache.as_ref().map(ContactCache::committed);
        let (account_states, history) = (self.account_states, self.history);
        let mut writer = ChunkWriter {
            store: &self.store,
            consumer: &self.consumer,
            retry,
            committed,
            account_states,
            history,
        };
        let received_by = &mut self.received_by;
        if records.len() <= PIPELINE_CHUNK {
            let chunk = fold_chunk(
                &self.ledger,
                &self.store,
                self.cache.as_mut(),
                records,
                received_by,
                &mut report,
            )?;
            publish(&chunk.entries)?;
            writer.write(&mut *self.pricing, chunk)?;
        } else {
            let (ledger, pricing, store) = (&self.ledger, &mut self.pricing, &*self.store);
            let mut cache = self.cache.as_mut();
            std::thread::scope(|scope| {
                // One chunk waits while one is written: the fold runs at most a chunk ahead.
                let (sender, receiver) = std::sync::mpsc::sync_channel::<FoldedChunk>(1);
                let written = std::thread::Builder::new()
                    .name("projector-write".into())
                    .spawn_scoped(scope, move || {
                        let mut writer = writer;
                        for chunk in receiver {
                            writer.write(&mut **pricing, chunk)?;
                        }
                        Ok::<(), ProjectorError>(())
                    })
                    .map_err(ProjectorError::WriteThread)?;
                let mut folded = Ok(());
                for records in records.chunks(PIPELINE_CHUNK) {
                    let folded_chunk =
                        fold_chunk(ledger, store, cache.as_deref_mut(), records, received_by, &mut report);
                    let chunk = match folded_chunk {
                        Ok(chunk) => chunk,
                        Err(error) => {
                            folded = Err(error);
                            break;
                        }
                    };
                    if let Err(error) = publish(&chunk.entries) {
                        folded = Err(error);
                        break;
                    }
                    if sender.send(chunk).is_err() {
                        break; // The writer failed; its error is reported below.
                    }
                }
                drop(sender);
                let written = written.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                written.and(folded)
            })?;
        }
        self.next_offset = report.next_offset;
        if let Some(cache) = &mut self.cache {
            // Every chunk's write landed: whatever is over budget can go.
            cache.evict_over_budget(&self.ledger);
        }

        metrics::counter!("ledger_projector_events_total").increment(report.records as u64);
        metrics::counter!("ledger_projector_entries_total").increment(report.entries as u64);
        metrics::counter!("ledger_projector_duplicates_total").increment(report.duplicates as u64);
        metrics::counter!("ledger_projector_conflicts_total").increment(report.conflicts as u64);
        metrics::histogram!("ledger_projector_batch_seconds").record(started.elapsed().as_secs_f64());
        Ok(report)
    }
}

/// Records per chunk of a pipelined batch: large enough that a chunk's sorted puts still land
/// close together in the memtable and the hand-over costs nothing, small enough that the fold
/// and the write overlap for most of a default batch (8,192 records).
pub const PIPELINE_CHUNK: usize = 2048;

/// What the fold of a chunk leaves for its write: the state puts, the journal entries still to
/// be priced and indexed, and the refused records.
struct FoldedChunk {
    /// The chunk's number in the contact cache (0 without one).
    number: u64,
    batch: StateBatch,
    entries: Vec<Entry>,
    /// For each entry, the latest receive time among the records up to the one that made it.
    received_by: Vec<i64>,
    refusals: Vec<(u64, String, Vec<u8>)>,
    next_offset: u64,
}

/// Folds `records` into the ledger and collects what they change, except pricing (the
/// writer's): the states of the contacts whose events or postings moved. Contacts not in
/// memory are loaded from `store` through `cache`; after the chunk, the cache evicts what
/// exceeds its budget. `received_by` is the latest receive time of the records before, and
/// moves on over these. Counts go into `report`.
fn fold_chunk(
    ledger: &RwLock<Ledger>,
    store: &Store,
    mut cache: Option<&mut ContactCache>,
    records: &[StoredRecord],
    received_by: &mut i64,
    report: &mut BatchReport,
) -> Result<FoldedChunk, ProjectorError> {
    let next_offset = records.last().map_or(0, |r| r.offset + 1);
    let mut refusals: Vec<(u64, String, Vec<u8>)> = Vec::new();
    let decoded = decode_all(records, &mut |record, reason| {
        refusals.push((record.offset, reason, record.payload.clone()));
    });
    let number = cache.as_deref_mut().map_or(0, ContactCache::start_chunk);
    let mut batch = StateBatch::default();
    let mut entries: Vec<Entry> = Vec::new();
    let mut entries_received_by: Vec<i64> = Vec::new();
    let mut touched_contacts: HashSet<(WabaId, ContactKey)> = HashSet::new();
    // The contacts whose postings moved (an entry of theirs posted or reversed).
    let mut postings_moved: HashSet<(WabaId, ContactKey)> = HashSet::new();
    let mut conflicts = 0;
    let mut remaining = decoded.into_iter().peekable();
    while remaining.peek().is_some() {
        let mut ledger = ledger.write().unwrap_or_else(PoisonError::into_inner);
        for Decoded { record, event } in remaining.by_ref().take(EVENTS_PER_LOCK) {
            let offset = record.offset;
            // A contact's events are kept in its state; the `events` family holds the
            // account's own (and everything, for a store without contact states).
            let events_scope = (event.contact.is_none() || cache.is_none()).then(|| scope_of(&event));
            let event_id = event.event_id.clone();
            let event_time = event.event_time;
            *received_by = (*received_by).max(event.receive_time.0);
            let contact = event.contact.clone().map(|c| (event.waba_id.clone(), c));
            let new_phone_number = contact
                .as_ref()
                .filter(|(_, c)| ledger.waba_of_phone_number(&c.phone_number_id).is_none())
                .map(|(w, c)| (w.clone(), c.phone_number_id.clone()));
            let entries_before = entries.len();
            let applied = match cache.as_deref_mut() {
                Some(cache) => ledger.apply_with(event, &mut StoreStates { store, cache }, &mut entries),
                None => ledger.apply(event, &mut entries).map_err(FoldError::Refused),
            };
            entries_received_by.resize(entries.len(), *received_by);
            // The contacts whose postings moved (allowance claims crossing the boundary).
            for entry in &entries[entries_before..] {
                let context = entry.fact.context();
                let key = (context.waba_id.clone(), context.contact.clone());
                if !postings_moved.contains(&key) {
                    postings_moved.insert(key.clone());
                    touched_contacts.insert(key);
                }
            }
            if let Some((waba_id, phone_number_id)) = new_phone_number {
                if ledger.waba_of_phone_number(&phone_number_id).is_some() {
                    batch.put_phone_number(&phone_number_id, waba_id.as_str());
                }
            }
            match applied {
                Ok(Ingested::Created) => {
                    report.created += 1;
                    if let Some(scope) = &events_scope {
                        batch.put_event(scope, event_time.0, event_id.as_str(), &record.payload);
                    }
                    if let Some((waba_id, contact)) = contact {
                        if let Some(cache) = cache.as_deref_mut() {
                            let key = (waba_id.clone(), contact.clone());
                            cache.push(&key, ContactEvent { offset, payload: record.payload.clone() });
                        }
                        touched_contacts.insert((waba_id, contact));
                    }
                }
                Ok(Ingested::Exists) => report.duplicates += 1,
                Ok(Ingested::ExistsWithDifferent(field)) => {
                    conflicts += 1;
                    tracing::warn!(event_id = %event_id, field, "same event id, different content");
                    let reason =
                        format!("event {event_id} arrived again with a different {field}; the first is kept");
                    refusals.push((offset, reason, record.payload.clone()));
                }
                Err(FoldError::Refused(error)) => {
                    let reason = format!("event {event_id} refused by the fold: {error}");
                    refusals.push((offset, reason, record.payload.clone()));
                }
                Err(error @ FoldError::State { .. }) => {
                    return Err(ProjectorError::ContactState(error.to_string()))
                }
            }
        }
    }

    if let Some(cache) = cache {
        {
            // Encoding a chunk's states takes milliseconds: under the read lock, so queries
            // reading the ledger meanwhile do not wait for it (only the fold writes it).
            let ledger = ledger.read().unwrap_or_else(PoisonError::into_inner);
            for key in &touched_contacts {
                cache.touch(key);
                cache.put_state(&mut batch, &ledger, key, postings_moved.contains(key));
            }
        }
        cache.evict_over_budget(ledger);
    }
    report.conflicts += conflicts;
    report.refused += refusals.len() - conflicts;
    report.entries += entries.len();
    if *received_by > i64::MIN {
        batch.set_received_by(*received_by);
    }
    Ok(FoldedChunk { number, batch, entries, received_by: entries_received_by, refusals, next_offset })
}

/// Prices and indexes a folded chunk's entries, writes the chunk with its offset, then keeps
/// its refused records. Pricing sees the entries in journal order (chunks are written in turn).
struct ChunkWriter<'a> {
    store: &'a Store,
    consumer: &'a str,
    retry: &'a mut (dyn FnMut(&ledger_store::StoreError, u32) -> bool + Send),
    /// Where the contact cache learns which chunk's write landed last.
    committed: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// Whether the account stage's state (claims, pricing's) is written.
    account_states: bool,
    /// Whether usage and billing moves are kept in `history`.
    history: bool,
}

impl ChunkWriter<'_> {
    fn write(&mut self, pricing: &mut dyn EntryPricing, chunk: FoldedChunk) -> Result<(), ProjectorError> {
        let FoldedChunk { number, mut batch, entries, received_by, refusals, next_offset } = chunk;
        for (entry, received_by) in entries.iter().zip(received_by) {
            let received_by = self.history.then_some(received_by);
            batch.put_entry(entry, &pricing.markets(entry), received_by);
            for priced in pricing.price(entry) {
                batch.add_billing(&priced.waba_id, &priced.month, &priced.line, priced.quantity, received_by);
            }
            if self.account_states {
                batch.move_claim(entry);
            }
        }
        let pricing_state = pricing.take_state_changes();
        if self.account_states {
            for (key, value) in &pricing_state {
                batch.pricing_state(key, value.as_deref());
            }
        }
        self.store.commit_retrying(batch, self.consumer, next_offset, self.retry)?;
        if let Some(committed) = &self.committed {
            committed.store(number, std::sync::atomic::Ordering::Release);
        }
        for (offset, reason, payload) in refusals {
            let content_type = Some("application/x-protobuf; message=ledger.v1.Event");
            let letter = DeadLetter::new(format!("log offset {offset}"), 0, reason, content_type, &payload);
            let mut attempt = 0;
            while let Err(error) = self.store.put_dead_letter(&letter) {
                attempt += 1;
                if !(self.retry)(&error, attempt) {
                    return Err(error.into());
                }
            }
        }
        Ok(())
    }
}

fn decode_all<'a>(
    records: &'a [StoredRecord],
    refuse: &mut dyn FnMut(&StoredRecord, String),
) -> Vec<Decoded<'a>> {
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        match ledger_proto::decode_event(&record.payload) {
            Ok(event) => out.push(Decoded { record, event }),
            Err(error) => {
                refuse(record, format!("log record {} is not a valid event: {error}", record.offset))
            }
        }
    }
    out
}

pub fn scope_of(event: &Event) -> Scope {
    match &event.contact {
        Some(contact) => Scope::Contact {
            waba_id: event.waba_id.to_string(),
            phone_number_id: contact.phone_number_id.to_string(),
            user_id: contact.user_id.to_string(),
        },
        None => Scope::Account { waba_id: event.waba_id.to_string() },
    }
}

/// Projects the log into the store up to offset `end` (exclusive); for replays and imports.
pub fn drain(
    projector: &mut Projector,
    log: &dyn EventLog,
    batch_size: usize,
    end: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BatchReport, ProjectorError> {
    let mut total = BatchReport { next_offset: projector.next_offset(), ..Default::default() };
    while projector.next_offset() < end {
        let want = batch_size.min((end - projector.next_offset()) as usize);
        let report = projector.step(log, want)?;
        if report.records == 0 {
            break;
        }
        total.records += report.records;
        total.created += report.created;
        total.duplicates += report.duplicates;
        total.conflicts += report.conflicts;
        total.refused += report.refused;
        total.entries += report.entries;
        total.next_offset = report.next_offset;
        progress(report.next_offset, end);
    }
    Ok(total)
}
