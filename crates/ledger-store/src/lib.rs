//! The projector's RocksDB state (`<data>/state`): one column family per access pattern, keys
//! encoded in [`keys`], and [`StateBatch`] — everything one projector batch changes, written
//! atomically together with the log offset it covers (ARCHITECTURE decision 5).
//!
//! | family | key | value |
//! | --- | --- | --- |
//! | `events` | scope, event time, event id | encoded `ledger.v1.Event` (contact event history) |
//! | `contacts` | contact | the contact's fold state, `ledger.v1.ContactState` ([`contact_state`]) |
//! | `entries` | entry id | encoded `ledger.v1.Entry` (the append-only journal) |
//! | `entry_index` | contact or account, instant, entry id | — |
//! | `usage` | account, month, unit, category, market, pricing type | i64 count, merged by addition |
//! | `billing` | account, month, priced line (pricing's encoding) | i64 count, merged by addition |
//! | `history` | account, month, `u`/`b`, `h`/`s`, hour or second received, usage counter or priced line | i64 delta of the entries received then, merged by addition ([`keys::history_key`]) |
//! | `allowances` | local month, pool kind, pool scope, claim instant, fact id | units, owner contact |
//! | `accounts` | `n`, business phone number id | the WABA id its events came under |
//! | `accounts` | `t`, pricing's key | pricing's own state (volume tier accruals, R54) |
//! | `offsets` | consumer name | next log offset to project |
//! | `offsets` | `\0rule_settings` | the rule settings the state was folded under (canonical JSON) |
//! | `offsets` | `\0contact_states` | present when contact states were written from the first record |
//! | `offsets` | `\0account_states` | present when claims, phone numbers and pricing's state were too |
//! | `offsets` | `\0history` | present when `history` was written from the first record |
//! | `offsets` | `\0received_by/`consumer | the latest receive time among the records the consumer projected |
//! | `dead_letters` | receive instant, sequence | refused input with its reason (JSON) |
//!
//! The facts of record (events, entries) are protobuf; the contact state is `ledger-store`'s own
//! versioned encoding.
//!
//! `history` answers usage and invoices as the ledger answered them at an earlier instant T
//! without replaying the log: a replay up to T stops at the first record received after T, so
//! what it has folded is every record up to the first whose receive time exceeds T, that is
//! every record whose running maximum of receive times is at most T. Each entry's counters are
//! added under that running maximum, into an hourly row and a row per second: an answer as of T
//! sums the hourly rows before T's hour and the second rows from its start to T.

pub mod contact_state;
pub mod keys;

use std::collections::HashMap;
use std::path::Path;

use ledger_core::{AllowancePool, Charge, Entry, EntryAction, LocalMonth, RuleSettings, StoredClaim};
use prost::Message;
use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, MergeOperands, Options,
    ReadOptions, WriteBatch, WriteOptions, DB,
};
use serde::{Deserialize, Serialize};

pub use contact_state::{ContactEvent, ContactState, ContactStateError};
pub use keys::{HistoryCounter, KeyError, Scope, UsageKey};

pub const EVENTS: &str = "events";
pub const CONTACTS: &str = "contacts";
pub const ENTRIES: &str = "entries";
pub const ENTRY_INDEX: &str = "entry_index";
pub const USAGE: &str = "usage";
pub const BILLING: &str = "billing";
pub const OFFSETS: &str = "offsets";
pub const ALLOWANCES: &str = "allowances";
pub const ACCOUNTS: &str = "accounts";
pub const HISTORY: &str = "history";
mod dead_letters;
pub use dead_letters::DeadLetterCaps;

pub const DEAD_LETTERS: &str = "dead_letters";

const FAMILIES: [&str; 11] = [
    EVENTS,
    CONTACTS,
    ENTRIES,
    ENTRY_INDEX,
    USAGE,
    BILLING,
    HISTORY,
    ALLOWANCES,
    ACCOUNTS,
    OFFSETS,
    DEAD_LETTERS,
];

/// Families earlier versions wrote that nothing reads any more: dropped when a store is opened
/// for writing. `dedupe` (event id → offset) duplicated what the log's own index answers;
/// `timelines` and `messages` held views the contact's stored state answers when asked.
const OBSOLETE_FAMILIES: [&str; 3] = ["dedupe", "timelines", "messages"];

/// The consumer name under which the embedded projector keeps its position.
pub const PROJECTOR: &str = "projector";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("stored value in {family}: {reason}")]
    Value { family: &'static str, reason: String },
}

/// A refused input, kept with the reason it was refused (ARCHITECTURE decision 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Unix microseconds.
    pub received_at_micros: i64,
    pub source: String,
    /// The HTTP status it was answered with (0 for refusals outside HTTP).
    pub status: u16,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The body as received, base64 (bodies need not be text); empty when withheld.
    pub body_base64: String,
    /// Why the body was not kept (input refused for its authenticity is not stored: a
    /// forger's bodies must not fill the disk or be served back), with its length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_withheld: Option<String>,
}

impl DeadLetter {
    /// A refusal received now, with the body as it came.
    pub fn new(
        source: impl Into<String>,
        status: u16,
        reason: impl Into<String>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> DeadLetter {
        use base64::Engine;
        let received_at_micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        DeadLetter {
            received_at_micros,
            source: source.into(),
            status,
            reason: reason.into(),
            content_type: content_type.map(str::to_owned),
            body_base64: base64::engine::general_purpose::STANDARD.encode(body),
            body_withheld: None,
        }
    }

    /// The same letter without its body, saying why and how long it was.
    pub fn withholding_body(mut self, why: &str) -> DeadLetter {
        use base64::Engine;
        let length =
            base64::engine::general_purpose::STANDARD.decode(&self.body_base64).map_or(0, |b| b.len());
        self.body_base64.clear();
        self.body_withheld = Some(format!("{why} ({length} bytes)"));
        self
    }
}

/// Adds i64 counts: usage counters take +1 for a posting and −1 for a reversal.
fn add_counts(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let decode = |bytes: &[u8]| bytes.try_into().map(i64::from_le_bytes).unwrap_or(0);
    let mut total = existing.map_or(0, decode);
    for operand in operands {
        total += decode(operand);
    }
    Some(total.to_le_bytes().to_vec())
}

/// RocksDB's memory, all families together: one block cache, and the memtables charged to it
/// (a `WriteBufferManager`), so the store stays within one figure whatever the number of
/// families or the write rate. Without it each family had its own cache and up to two 64 MiB
/// memtables: 1.3 GiB of memtables alone for ten families under a steady write.
pub const STORE_MEMORY_BYTES: usize = 384 << 20;
/// The part of [`STORE_MEMORY_BYTES`] memtables may take before the largest is flushed.
const MEMTABLE_BYTES: usize = 128 << 20;

/// The write-ahead log's bound: past it, RocksDB flushes the families whose memtables hold the
/// oldest WAL file, so it can be deleted. Without it a family written rarely (a phone number, an
/// offset) pins every later file, up to RocksDB's default of four times all memtables: gigabytes
/// on the state's disk, and as much to replay at a restart.
pub const MAX_WAL_BYTES: u64 = MEMTABLE_BYTES as u64;

/// The caches a store's families share (see [`STORE_MEMORY_BYTES`]).
struct Memory {
    cache: rocksdb::Cache,
    memtables: rocksdb::WriteBufferManager,
}

impl Memory {
    fn new() -> Memory {
        let cache = rocksdb::Cache::new_lru_cache(STORE_MEMORY_BYTES);
        let memtables = rocksdb::WriteBufferManager::new_write_buffer_manager_with_cache(
            MEMTABLE_BYTES,
            false,
            cache.clone(),
        );
        Memory { cache, memtables }
    }
}

fn family_options(name: &str, memory: &Memory) -> Options {
    let mut options = Options::default();
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    if name == USAGE || name == BILLING || name == HISTORY {
        options.set_merge_operator_associative("add_i64", add_counts);
    }
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&memory.cache);
    if name == CONTACTS || name == ENTRIES {
        // Point lookups: a bloom filter spares reads of keys that are not there.
        table.set_bloom_filter(10.0, false);
    }
    if name == CONTACTS {
        // A contact loaded into the fold was nearly always written long before: a memtable
        // filter answers "not here" without walking the skip list (profiled: 40 % of a load).
        options.set_memtable_whole_key_filtering(true);
        options.set_memtable_prefix_bloom_ratio(0.05);
    }
    options.set_block_based_table_factory(&table);
    options
}

fn descriptors(memory: &Memory) -> Vec<ColumnFamilyDescriptor> {
    FAMILIES.iter().map(|name| ColumnFamilyDescriptor::new(*name, family_options(name, memory))).collect()
}

fn db_options(memory: &Memory) -> Options {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.increase_parallelism(2);
    options.set_write_buffer_manager(&memory.memtables);
    options.set_max_total_wal_size(MAX_WAL_BYTES);
    options
}

/// Lowers the CPU priority of RocksDB's flush and compaction threads (the default environment's
/// pools, which every store of the process shares), for processes that answer queries beside
/// the stages. Compactions keep their share of a core nobody else wants.
pub fn lower_background_priority() {
    match rocksdb::Env::new() {
        Ok(mut env) => {
            env.lower_thread_pool_cpu_priority();
            env.lower_high_priority_thread_pool_cpu_priority();
        }
        Err(error) => tracing::warn!(%error, "could not lower RocksDB's background CPU priority"),
    }
}

/// Keys with their values, in key order.
pub type KeyValues = Vec<(Vec<u8>, Vec<u8>)>;

/// A counter family's deltas, keyed and sorted, ready to merge.
type CounterDeltas = Vec<(Vec<u8>, i64)>;

/// The projector's state database.
pub struct Store {
    db: DB,
    /// Second part of dead-letter keys. Seeded from the clock, so letters of one instant stay
    /// apart across restarts and across the writers (API, projector, import) of one process.
    dead_letter_sequence: std::sync::atomic::AtomicU64,
    /// What the dead letters take, by source, to keep them within their caps.
    dead_letter_budget: std::sync::Mutex<dead_letters::Budget>,
    read_only: bool,
}

impl Drop for Store {
    /// Flushes the memtables to tables, so the next open does not replay the WAL into them
    /// (up to the memtable budget: seconds before `/readyz` after a large import). Nothing
    /// depends on it: what is not flushed is in the WAL, or projected again from the log.
    fn drop(&mut self) {
        if self.read_only {
            return;
        }
        let families: Vec<&ColumnFamily> =
            FAMILIES.iter().filter_map(|name| self.db.cf_handle(name)).collect();
        if let Err(error) = self.db.flush_cfs_opt(&families, &rocksdb::FlushOptions::default()) {
            tracing::warn!(%error, "flushing the state's memtables at close");
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.db.path()).finish()
    }
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let memory = Memory::new();
        let options = db_options(&memory);
        // RocksDB opens a database only with every family it holds: open the obsolete ones
        // found too, then drop them.
        let existing = DB::list_cf(&options, path).unwrap_or_default();
        let obsolete: Vec<&str> =
            OBSOLETE_FAMILIES.into_iter().filter(|name| existing.iter().any(|e| e == name)).collect();
        let mut families = descriptors(&memory);
        families.extend(obsolete.iter().map(|name| ColumnFamilyDescriptor::new(*name, Options::default())));
        let mut db = DB::open_cf_descriptors(&options, path, families)?;
        for name in obsolete {
            db.drop_cf(name)?;
        }
        Ok(Store::with_db(db, false))
    }

    /// Opens for reading beside the process that writes it (queries against a data dir).
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let memory = Memory::new();
        Ok(Store::with_db(
            DB::open_cf_descriptors_read_only(&db_options(&memory), path, descriptors(&memory), false)?,
            true,
        ))
    }

    fn with_db(db: DB, read_only: bool) -> Store {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Store {
            db,
            dead_letter_sequence: std::sync::atomic::AtomicU64::new(seed),
            dead_letter_budget: std::sync::Mutex::new(dead_letters::Budget::default()),
            read_only,
        }
    }

    /// Opened with [`Store::open_read_only`]: beside a writer, never written.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn cf(&self, name: &'static str) -> &ColumnFamily {
        self.db.cf_handle(name).expect("every family is created at open")
    }

    pub fn batch(&self) -> StateBatch {
        StateBatch::default()
    }

    /// Writes a batch and the log position it covers, atomically. Not synced: the log is the
    /// durable record, and a batch lost in a machine crash is projected again from the older
    /// offset that RocksDB's point-in-time recovery leaves.
    pub fn commit(&self, batch: StateBatch, consumer: &str, next_offset: u64) -> Result<(), StoreError> {
        self.commit_retrying(batch, consumer, next_offset, &mut |_, _| false)
    }

    /// As [`Store::commit`]; when the write fails, `retry(error, attempt)` says whether to try
    /// the same write again (it waits as it sees fit). The write is atomic: a failed attempt
    /// changed nothing, so the retried one lands the batch exactly once.
    pub fn commit_retrying(
        &self,
        mut batch: StateBatch,
        consumer: &str,
        next_offset: u64,
        retry: &mut dyn FnMut(&StoreError, u32) -> bool,
    ) -> Result<(), StoreError> {
        batch.puts.sort();
        let counters: Vec<(&'static str, CounterDeltas)> =
            [(USAGE, &mut batch.usage), (BILLING, &mut batch.billing), (HISTORY, &mut batch.history)]
                .into_iter()
                .map(|(family, counters)| {
                    let mut counters: Vec<(Vec<u8>, i64)> =
                        counters.drain().filter(|(_, delta)| *delta != 0).collect();
                    counters.sort_unstable();
                    (family, counters)
                })
                .collect();
        // `write_opt` takes the WriteBatch: a retry builds it again from the same parts, so the
        // write that lands is the same, and a write that succeeds first time costs no copy.
        let build = || {
            let mut write = batch.puts.write_batch(self);
            for (family, counters) in &counters {
                let handle = self.cf(family);
                for (key, delta) in counters {
                    write.merge_cf(handle, key, delta.to_le_bytes());
                }
            }
            write.put_cf(self.cf(OFFSETS), consumer.as_bytes(), next_offset.to_be_bytes());
            if let Some(instant) = batch.received_by {
                write.put_cf(self.cf(OFFSETS), keys::received_by_key(consumer), instant.to_be_bytes());
            }
            write
        };
        let mut attempt = 0;
        loop {
            match self.db.write_opt(build(), &WriteOptions::default()) {
                Ok(()) => return Ok(()),
                Err(error) => {
                    let error = StoreError::from(error);
                    attempt += 1;
                    if !retry(&error, attempt) {
                        return Err(error);
                    }
                }
            }
        }
    }

    /// The next log offset `consumer` projects (0 when it never committed).
    pub fn offset(&self, consumer: &str) -> Result<u64, StoreError> {
        match self.db.get_pinned_cf(self.cf(OFFSETS), consumer.as_bytes())? {
            None => Ok(0),
            Some(raw) => raw
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Value { family: OFFSETS, reason: "offset is not 8 bytes".into() }),
        }
    }

    /// The rule settings the state was folded under; `None` for a store nothing was folded into
    /// yet (ARCHITECTURE decision 2: no store mixes rule sets).
    pub fn rule_settings(&self) -> Result<Option<RuleSettings>, StoreError> {
        let Some(raw) = self.db.get_pinned_cf(self.cf(OFFSETS), keys::RULE_SETTINGS_KEY)? else {
            return Ok(None);
        };
        let text = std::str::from_utf8(&raw)
            .map_err(|e| StoreError::Value { family: OFFSETS, reason: format!("rule settings: {e}") })?;
        RuleSettings::from_canonical(text).map(Some).map_err(|e| StoreError::Value {
            family: OFFSETS,
            reason: format!("rule settings {text:?}: {e}"),
        })
    }

    /// Whether every contact's fold state was written since the store's first record (the
    /// contact stage may then evict contacts and load them back).
    pub fn contact_states_kept(&self) -> Result<bool, StoreError> {
        Ok(self.db.get_pinned_cf(self.cf(OFFSETS), keys::CONTACT_STATES_KEY)?.is_some())
    }

    /// Records, before the first record is projected, that contact states are written. Synced.
    pub fn record_contact_states_kept(&self) -> Result<(), StoreError> {
        self.put_offsets_synced(keys::CONTACT_STATES_KEY, &[contact_state::CONTACT_STATE_VERSION as u8])
    }

    /// Whether allowance claims, phone numbers and pricing's state were written since the
    /// store's first record (it then starts without folding the log again).
    pub fn account_states_kept(&self) -> Result<bool, StoreError> {
        Ok(self.db.get_pinned_cf(self.cf(OFFSETS), keys::ACCOUNT_STATES_KEY)?.is_some())
    }

    /// Records, before the first record is projected, that account states are written. Synced.
    pub fn record_account_states_kept(&self) -> Result<(), StoreError> {
        self.put_offsets_synced(keys::ACCOUNT_STATES_KEY, &[1])
    }

    /// Whether `history` was written from the store's first record (as-of usage and invoices
    /// are then answered from it).
    pub fn history_kept(&self) -> Result<bool, StoreError> {
        Ok(self.db.get_pinned_cf(self.cf(OFFSETS), keys::HISTORY_KEY)?.is_some())
    }

    /// Records, before the first record is projected, that `history` is written. Synced.
    pub fn record_history_kept(&self) -> Result<(), StoreError> {
        self.put_offsets_synced(keys::HISTORY_KEY, &[1])
    }

    /// The latest receive time among the records `consumer` projected (`None` before the
    /// first, or for a store that did not keep it).
    pub fn received_by(&self, consumer: &str) -> Result<Option<i64>, StoreError> {
        match self.db.get_pinned_cf(self.cf(OFFSETS), keys::received_by_key(consumer))? {
            None => Ok(None),
            Some(raw) => raw.as_ref().try_into().map(|raw| Some(i64::from_be_bytes(raw))).map_err(|_| {
                StoreError::Value { family: OFFSETS, reason: "a receive time is not 8 bytes".into() }
            }),
        }
    }

    /// Usage counters of one account and local month as they stood once every record received
    /// by `as_of` was projected, zero counts left out (see `history`).
    pub fn usage_as_of(
        &self,
        waba_id: &str,
        month: &str,
        as_of: i64,
    ) -> Result<Vec<(UsageKey, i64)>, StoreError> {
        let month_prefix = keys::usage_month_prefix(waba_id, month);
        self.history_as_of(waba_id, month, HistoryCounter::Usage, as_of)?
            .into_iter()
            .map(|(counter, count)| {
                let mut key = month_prefix.clone();
                key.extend_from_slice(&counter);
                Ok((keys::decode_usage_key(&key)?, count))
            })
            .collect()
    }

    /// Priced lines of one account and local month (as [`Store::billing`]) as they stood once
    /// every record received by `as_of` was projected.
    pub fn billing_as_of(
        &self,
        waba_id: &str,
        month: &str,
        as_of: i64,
    ) -> Result<Vec<(Vec<u8>, i64)>, StoreError> {
        Ok(self.history_as_of(waba_id, month, HistoryCounter::Billing, as_of)?.into_iter().collect())
    }

    /// The `history` totals by counter: the hour rows before `as_of`'s hour, then the second
    /// rows from that hour's start to `as_of` inclusive.
    fn history_as_of(
        &self,
        waba_id: &str,
        month: &str,
        counter: HistoryCounter,
        as_of: i64,
    ) -> Result<std::collections::BTreeMap<Vec<u8>, i64>, StoreError> {
        use keys::HistoryGrain;
        let hour = HistoryGrain::Hour.start_of(as_of);
        let mut totals: std::collections::BTreeMap<Vec<u8>, i64> = Default::default();
        for (grain, from, to) in
            [(HistoryGrain::Hour, i64::MIN, hour - 1), (HistoryGrain::Second, hour, as_of)]
        {
            let prefix = keys::history_prefix(waba_id, month, counter, grain);
            let mut start = prefix.clone();
            keys::put_time(&mut start, from);
            let iter = self.db.iterator_cf(self.cf(HISTORY), IteratorMode::From(&start, Direction::Forward));
            for item in iter {
                let (key, value) = item?;
                if !key.starts_with(&prefix) {
                    break;
                }
                let (at, counter_key) = keys::decode_history_key(&prefix, &key)?;
                if at > to {
                    break;
                }
                *totals.entry(counter_key.to_vec()).or_default() += decode_count(&value);
            }
        }
        totals.retain(|_, count| *count != 0);
        Ok(totals)
    }

    /// The encoded account events (settings, category changes, tier updates) of every account.
    pub fn account_events(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.scan(EVENTS, &[keys::ACCOUNT_SCOPE], usize::MAX, |_, value| Ok(value.to_vec()))
    }

    /// Every business phone number seen, with the WABA its events came under.
    pub fn phone_numbers(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.scan(ACCOUNTS, &[keys::PHONE_NUMBER], usize::MAX, |key, value| {
            let waba_id = std::str::from_utf8(value)
                .map_err(|e| StoreError::Value { family: ACCOUNTS, reason: format!("WABA id: {e}") })?;
            Ok((keys::decode_phone_number_key(key)?, waba_id.to_owned()))
        })
    }

    /// The stored claims of one allowance pool, in the order they are granted.
    pub fn pool_claims(&self, pool: &AllowancePool) -> Result<Vec<StoredClaim>, StoreError> {
        let prefix = keys::allowance_pool_prefix(pool);
        self.scan(ALLOWANCES, &prefix, usize::MAX, |key, value| Ok(keys::decode_claim(key, value)?))
    }

    /// The allowance pools of a local month that hold claims: one seek per pool, whatever
    /// the number of its claims.
    pub fn pools_in_month(&self, month: LocalMonth) -> Result<Vec<AllowancePool>, StoreError> {
        let prefix = keys::allowance_month_prefix(month);
        let mut pools = Vec::new();
        let mut iter = self.db.raw_iterator_cf(self.cf(ALLOWANCES));
        iter.seek(&prefix);
        while let Some(key) = iter.key() {
            if !key.starts_with(&prefix) {
                break;
            }
            let (pool, _, _) = keys::decode_claim_key(key)?;
            // Past every claim of this pool: its prefix followed by the largest instant.
            let mut next = keys::allowance_pool_prefix(&pool);
            next.extend_from_slice(&[0xff; 25]);
            pools.push(pool);
            iter.seek(&next);
        }
        iter.status()?;
        Ok(pools)
    }

    /// Pricing's own state under `prefix` (of pricing's keys), as (pricing's key, value).
    pub fn pricing_states(&self, prefix: &[u8]) -> Result<KeyValues, StoreError> {
        let full = keys::pricing_state_key(prefix);
        self.scan(ACCOUNTS, &full, usize::MAX, |key, value| Ok((key[1..].to_vec(), value.to_vec())))
    }

    /// One key of pricing's own state.
    pub fn pricing_state(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(ACCOUNTS), keys::pricing_state_key(key))?)
    }

    /// Records the rule settings of a store before anything is folded into it. Synced.
    pub fn record_rule_settings(&self, settings: &RuleSettings) -> Result<(), StoreError> {
        self.put_offsets_synced(keys::RULE_SETTINGS_KEY, settings.canonical().as_ref())
    }

    /// What a store records about itself beside the consumers' offsets, once and durably.
    fn put_offsets_synced(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.put_cf_opt(self.cf(OFFSETS), key, value, &options)?;
        Ok(())
    }

    /// Keeps a refused input within the dead-letter caps, dropping the oldest letters (of its
    /// source first) to make room; answers how many were dropped. Synced: the refusal is
    /// answered only after this returns.
    pub fn put_dead_letter(&self, letter: &DeadLetter) -> Result<usize, StoreError> {
        let sequence = self.dead_letter_sequence.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let value = serde_json::to_vec(letter)
            .map_err(|e| StoreError::Value { family: DEAD_LETTERS, reason: e.to_string() })?;
        let key = keys::dead_letter_key(letter.received_at_micros, sequence);
        let mut budget = self.dead_letter_budget.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !budget.is_loaded() {
            budget.load(self.db.iterator_cf(self.cf(DEAD_LETTERS), IteratorMode::Start))?;
        }
        let dropped = budget.make_room(&letter.source, value.len() as u64);
        let mut batch = WriteBatch::default();
        for old in &dropped {
            batch.delete_cf(self.cf(DEAD_LETTERS), old);
        }
        batch.put_cf(self.cf(DEAD_LETTERS), key, &value);
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options)?;
        budget.commit(&dropped, key, &letter.source, value.len() as u64);
        Ok(dropped.len())
    }

    /// Sets the dead letters' caps (the defaults are [`DeadLetterCaps::default`]).
    pub fn set_dead_letter_caps(&self, caps: DeadLetterCaps) {
        self.dead_letter_budget.lock().unwrap_or_else(std::sync::PoisonError::into_inner).caps = caps;
    }

    /// Dead letters, newest first.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self.dead_letters_page(None, limit)?.into_iter().map(|(_, letter)| letter).collect())
    }

    /// Up to `limit` dead letters older than the one at `before` (a key from an earlier page),
    /// newest first, with their keys.
    pub fn dead_letters_page(
        &self,
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<([u8; 16], DeadLetter)>, StoreError> {
        let mode = match before {
            Some(key) => IteratorMode::From(key, rocksdb::Direction::Reverse),
            None => IteratorMode::End,
        };
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(DEAD_LETTERS), mode) {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item?;
            if before == Some(&key[..]) {
                continue;
            }
            let key: [u8; 16] = key[..].try_into().map_err(|_| StoreError::Value {
                family: DEAD_LETTERS,
                reason: format!("a key of {} bytes", key.len()),
            })?;
            let letter = serde_json::from_slice(&value)
                .map_err(|e| StoreError::Value { family: DEAD_LETTERS, reason: e.to_string() })?;
            out.push((key, letter));
        }
        Ok(out)
    }

    /// The encoded events the `events` family holds for a scope, in event-time order: an
    /// account's own events; a contact's only in a store written before contact states were
    /// kept (a contact's events are in its state, [`Store::contact_state`]).
    pub fn events(&self, scope: &Scope) -> Result<Vec<Vec<u8>>, StoreError> {
        self.scan(EVENTS, &keys::scope_prefix(scope), usize::MAX, |_, value| Ok(value.to_vec()))
    }

    /// A contact's stored fold state, if it has one.
    pub fn contact_state(
        &self,
        waba_id: &str,
        phone_number_id: &str,
        user_id: &str,
    ) -> Result<Option<ContactState>, StoreError> {
        let key = keys::contact_prefix(waba_id, phone_number_id, user_id);
        let Some(bytes) = self.db.get_pinned_cf(self.cf(CONTACTS), key)? else { return Ok(None) };
        let state = decode_contact_state(&bytes)?;
        Ok(Some(state))
    }

    /// The contacts of an account that have a stored state, as (phone number id, user id),
    /// in key order.
    pub fn contacts_of(&self, waba_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.scan(CONTACTS, &keys::contact_account_prefix(waba_id), usize::MAX, |key, _| {
            let (_, phone_number_id, user_id) = keys::parse_contact_prefix(key)?;
            Ok((phone_number_id, user_id))
        })
    }

    pub fn entry(&self, entry_id: u128) -> Result<Option<ledger_proto::v1::Entry>, StoreError> {
        match self.db.get_pinned_cf(self.cf(ENTRIES), keys::entry_key(entry_id))? {
            None => Ok(None),
            Some(raw) => Ok(Some(decode_entry(&raw)?)),
        }
    }

    /// Journal entries of a scope whose instant is in `[from, to)`, in time order.
    pub fn entries(
        &self,
        scope: &Scope,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<ledger_proto::v1::Entry>, StoreError> {
        self.entries_page(&mut EntryCursor::new(scope, from, to), limit)
    }

    /// The next page of up to `limit` entries of a paged scan ([`EntryCursor`]), in time order;
    /// empty once the scan is done.
    pub fn entries_page(
        &self,
        cursor: &mut EntryCursor,
        limit: usize,
    ) -> Result<Vec<ledger_proto::v1::Entry>, StoreError> {
        if cursor.next >= cursor.end {
            return Ok(Vec::new());
        }
        let mut read_options = ReadOptions::default();
        read_options.set_iterate_upper_bound(cursor.end.clone());
        let iter = self.db.iterator_cf_opt(
            self.cf(ENTRY_INDEX),
            read_options,
            IteratorMode::From(&cursor.next, Direction::Forward),
        );
        let mut out = Vec::new();
        let mut last = None;
        for item in iter.take(limit) {
            let (key, _) = item?;
            let (_, _, id) = keys::decode_entry_index_key(&key)?;
            if let Some(entry) = self.entry(id)? {
                out.push(entry);
            }
            last = Some(key);
        }
        match last {
            // The smallest key after the last one read.
            Some(key) if out.len() == limit => {
                cursor.next = key.to_vec();
                cursor.next.push(0);
            }
            _ => cursor.next = cursor.end.clone(),
        }
        Ok(out)
    }

    /// Usage counters of one account and local month, zero counts left out.
    pub fn usage(&self, waba_id: &str, month: &str) -> Result<Vec<(UsageKey, i64)>, StoreError> {
        let prefix = keys::usage_month_prefix(waba_id, month);
        let mut out = self.scan(USAGE, &prefix, usize::MAX, |key, value| {
            Ok((keys::decode_usage_key(key)?, decode_count(value)))
        })?;
        out.retain(|(_, count)| *count != 0);
        Ok(out)
    }

    /// Priced lines of one account and local month (the invoice aggregates), as pricing encoded
    /// them, zero counts left out.
    pub fn billing(&self, waba_id: &str, month: &str) -> Result<Vec<(Vec<u8>, i64)>, StoreError> {
        let prefix = keys::usage_month_prefix(waba_id, month);
        let mut out = self.scan(BILLING, &prefix, usize::MAX, |key, value| {
            Ok((key[prefix.len()..].to_vec(), decode_count(value)))
        })?;
        out.retain(|(_, count)| *count != 0);
        Ok(out)
    }

    fn scan<T>(
        &self,
        family: &'static str,
        prefix: &[u8],
        limit: usize,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(self.cf(family), IteratorMode::From(prefix, Direction::Forward));
        for item in iter {
            let (key, value) = item?;
            if !key.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push(each(&key, &value)?);
        }
        Ok(out)
    }

    /// A digest of the state that depends only on the set of events projected, not on their
    /// arrival order or receive times: event keys, the entries standing after reversals (ids
    /// left out, as they count postings) and non-zero usage counters. Two stores with equal
    /// digests answer every query alike (the contact views are computed from the events).
    pub fn digest(&self) -> Result<StateDigest, StoreError> {
        use xxhash_rust::xxh3::xxh3_128;
        let mut digest = StateDigest::default();

        let mut events = xxhash_rust::xxh3::Xxh3::new();
        self.each_event_key(&mut |key| {
            events.update(&(key.len() as u32).to_le_bytes());
            events.update(key);
            digest.events += 1;
        })?;
        digest.parts.push(("events", events.digest128()));

        let posted = self.standing_entries()?;
        let mut live: Vec<u128> = posted.values().map(|bytes| xxh3_128(bytes)).collect();
        live.sort_unstable();
        digest.live_entries = live.len() as u64;
        digest.parts.push(("live_entries", hash_all(live.iter().map(|h| h.to_le_bytes()))));

        for family in [USAGE, BILLING] {
            let mut counters = xxhash_rust::xxh3::Xxh3::new();
            for item in self.db.iterator_cf(self.cf(family), IteratorMode::Start) {
                let (key, value) = item?;
                let count = decode_count(&value);
                if count != 0 {
                    counters.update(&(key.len() as u32).to_le_bytes());
                    counters.update(&key);
                    counters.update(&count.to_le_bytes());
                }
            }
            digest.parts.push((family, counters.digest128()));
        }
        Ok(digest)
    }

    /// Every stored event's key ([`keys::event_key`]) in key order, whichever way the store
    /// keeps its events: account events in the `events` family, then each contact's from its
    /// state; a store written before contact states were kept has them all in `events`.
    fn each_event_key(&self, each: &mut dyn FnMut(&[u8])) -> Result<(), StoreError> {
        let from_states = self.contact_states_kept()?;
        for item in self.db.iterator_cf(self.cf(EVENTS), IteratorMode::Start) {
            let (key, _) = item?;
            // Copies of contact events an earlier build wrote beside the contact states.
            if from_states && key.first() != Some(&keys::ACCOUNT_SCOPE) {
                continue;
            }
            each(&key);
        }
        if from_states {
            for item in self.db.iterator_cf(self.cf(CONTACTS), IteratorMode::Start) {
                let (key, value) = item?;
                let state = decode_contact_state(&value)?;
                for event_key in Self::contact_event_keys(&key, &state)? {
                    each(&event_key);
                }
            }
        }
        Ok(())
    }

    /// The event keys of one stored contact state (stored under `key`), sorted.
    fn contact_event_keys(key: &[u8], state: &ContactState) -> Result<Vec<Vec<u8>>, StoreError> {
        let invalid = |reason: String| StoreError::Value { family: CONTACTS, reason };
        let (waba_id, phone_number_id, user_id) = keys::parse_contact_prefix(key)?;
        let scope = Scope::Contact { waba_id, phone_number_id, user_id };
        let mut event_keys = Vec::with_capacity(state.events.len());
        for event in &state.events {
            let decoded = ledger_proto::decode_event(&event.payload).map_err(|e| invalid(e.to_string()))?;
            event_keys.push(keys::event_key(&scope, decoded.event_time.0, decoded.event_id.as_str()));
        }
        event_keys.sort_unstable();
        Ok(event_keys)
    }
}

impl Store {
    /// The entries standing after reversals, by id, each encoded without its id (ids count
    /// postings, so equal states can differ in them): what digests and comparisons look at.
    fn standing_entries(&self) -> Result<HashMap<Vec<u8>, Vec<u8>>, StoreError> {
        let mut posted: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let mut reversed: Vec<Vec<u8>> = Vec::new();
        for item in self.db.iterator_cf(self.cf(ENTRIES), IteratorMode::Start) {
            let (_, value) = item?;
            let mut entry = decode_entry(&value)?;
            if entry.action == ledger_proto::v1::EntryAction::Reverse as i32 {
                reversed.push(entry.reverses);
            } else {
                let id = std::mem::take(&mut entry.id);
                posted.insert(id, entry.encode_to_vec());
            }
        }
        for id in reversed {
            posted.remove(&id);
        }
        Ok(posted)
    }

    /// The state as comparable sets, for checking that stores split by partition together hold
    /// what one store holds: merge the partitions' items ([`StateItems::merge`]) and compare.
    /// Entries are kept without their ids and after reversals, like the digest.
    pub fn state_items(&self) -> Result<StateItems, StoreError> {
        let mut items = StateItems::default();
        self.each_event_key(&mut |key| {
            items.events.insert(key.to_vec());
        })?;
        for bytes in self.standing_entries()?.into_values() {
            *items.live_entries.entry(bytes).or_default() += 1;
        }
        for family in [USAGE, BILLING] {
            for item in self.db.iterator_cf(self.cf(family), IteratorMode::Start) {
                let (key, value) = item?;
                items.counters.insert((family, key.to_vec()), decode_count(&value));
            }
        }
        for item in self.db.iterator_cf(self.cf(CONTACTS), IteratorMode::Start) {
            let (key, value) = item?;
            let state = decode_contact_state(&value)?;
            let mut postings: Vec<Vec<u8>> = state
                .journal
                .postings
                .iter()
                .map(|posting| {
                    let mut entry = ledger_proto::v1::Entry::from(&posting.entry());
                    entry.id.clear();
                    entry.encode_to_vec()
                })
                .collect();
            postings.sort_unstable();
            let contact = ContactRecord { event_keys: Self::contact_event_keys(&key, &state)?, postings };
            items.contacts.insert(key.to_vec(), contact);
        }
        items.counters.retain(|_, count| *count != 0);
        Ok(items)
    }
}

/// A stored contact state, decoded; one that does not decode is the `contacts` family's error.
fn decode_contact_state(bytes: &[u8]) -> Result<ContactState, StoreError> {
    contact_state::decode(bytes).map_err(|e| StoreError::Value { family: CONTACTS, reason: e.to_string() })
}

/// Where a paged scan of one scope's entries in `[from, to)` stands ([`Store::entries_page`]).
#[derive(Debug, Clone)]
pub struct EntryCursor {
    next: Vec<u8>,
    end: Vec<u8>,
}

impl EntryCursor {
    pub fn new(scope: &Scope, from: i64, to: i64) -> EntryCursor {
        let prefix = keys::scope_prefix(scope);
        let mut next = prefix.clone();
        keys::put_time(&mut next, from);
        let mut end = prefix;
        keys::put_time(&mut end, to);
        EntryCursor { next, end }
    }
}

/// A store's content as sets and sums ([`Store::state_items`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateItems {
    /// Event keys (account events appear in every partition's store: a set).
    pub events: std::collections::BTreeSet<Vec<u8>>,
    /// Standing entries without ids, with multiplicity.
    pub live_entries: std::collections::BTreeMap<Vec<u8>, u64>,
    /// Non-zero usage and billing counters.
    pub counters: std::collections::BTreeMap<(&'static str, Vec<u8>), i64>,
    /// Each stored contact state, by contact key.
    pub contacts: std::collections::BTreeMap<Vec<u8>, ContactRecord>,
}

/// A stored contact state as comparable parts: what stays the same whatever order the
/// contact's events arrived in (the reversal counts and posting ids do not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactRecord {
    /// The keys of its events ([`keys::event_key`]), sorted.
    pub event_keys: Vec<Vec<u8>>,
    /// Its standing postings, encoded without their ids, sorted.
    pub postings: Vec<Vec<u8>>,
}

impl StateItems {
    /// Adds another partition's items: sets unite, counters and entry counts add up, contact
    /// states (each one partition's) are taken as they are.
    pub fn merge(&mut self, other: StateItems) {
        self.events.extend(other.events);
        for (entry, n) in other.live_entries {
            *self.live_entries.entry(entry).or_default() += n;
        }
        for (key, count) in other.counters {
            *self.counters.entry(key).or_default() += count;
        }
        self.counters.retain(|_, count| *count != 0);
        self.contacts.extend(other.contacts);
    }
}

fn hash_all<const N: usize>(items: impl Iterator<Item = [u8; N]>) -> u128 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for item in items {
        hasher.update(&item);
    }
    hasher.digest128()
}

fn decode_count(value: &[u8]) -> i64 {
    value.try_into().map(i64::from_le_bytes).unwrap_or(0)
}

fn decode_entry(raw: &[u8]) -> Result<ledger_proto::v1::Entry, StoreError> {
    ledger_proto::v1::Entry::decode(raw)
        .map_err(|e| StoreError::Value { family: ENTRIES, reason: e.to_string() })
}

/// Order-independent summary of a store's content, per part, for audits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StateDigest {
    pub events: u64,
    pub live_entries: u64,
    pub parts: Vec<(&'static str, u128)>,
}

impl StateDigest {
    /// One hex string over every part.
    pub fn combined(&self) -> String {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for (name, hash) in &self.parts {
            hasher.update(name.as_bytes());
            hasher.update(&hash.to_le_bytes());
        }
        format!("{:032x}", hasher.digest128())
    }

    /// The names of the parts in which two digests differ.
    pub fn differences(&self, other: &StateDigest) -> Vec<&'static str> {
        self.parts.iter().zip(&other.parts).filter(|(a, b)| a.1 != b.1).map(|(a, _)| a.0).collect()
    }
}

/// Everything one projector batch changes. Usage deltas are summed in memory and merged once
/// per counter at commit.
#[derive(Default)]
pub struct StateBatch {
    puts: SortedPuts,
    usage: HashMap<Vec<u8>, i64>,
    billing: HashMap<Vec<u8>, i64>,
    history: HashMap<Vec<u8>, i64>,
    /// The running maximum of receive times the batch's records reached, kept with the offset.
    received_by: Option<i64>,
}

impl std::fmt::Debug for StateBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateBatch").field("puts", &self.puts.index.len()).finish()
    }
}

/// The families a batch puts into, in the order the sort hands them over (any fixed order will do).
#[derive(Clone, Copy)]
enum Family {
    Events,
    Contacts,
    Entries,
    EntryIndex,
    Allowances,
    Accounts,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Events => EVENTS,
            Family::Contacts => CONTACTS,
            Family::Entries => ENTRIES,
            Family::EntryIndex => ENTRY_INDEX,
            Family::Allowances => ALLOWANCES,
            Family::Accounts => ACCOUNTS,
        }
    }
}

/// A batch's puts, handed to RocksDB sorted by family and key.
///
/// A memtable is a skip list that remembers where its last insert went: inserting keys in order
/// walks a few nodes from there, while keys in arrival order (contacts interleaved) search from
/// the top and miss the caches on most of the ~20 levels. The projector's batches touch tens of
/// thousands of keys across contacts, so the order is most of the write's cost. Keys and values
/// live in one buffer; the index is what gets sorted. Equal keys keep their order (the sort is
/// stable), so a later put still wins.
#[derive(Default)]
struct SortedPuts {
    bytes: Vec<u8>,
    index: Vec<Put>,
}

struct Put {
    family: Family,
    key: std::ops::Range<usize>,
    /// `None`: the key is deleted.
    value: Option<std::ops::Range<usize>>,
}

impl SortedPuts {
    fn put(&mut self, family: Family, key: &[u8], value: &[u8]) {
        let key_at = self.bytes.len();
        self.bytes.extend_from_slice(key);
        let value_at = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.index.push(Put { family, key: key_at..value_at, value: Some(value_at..self.bytes.len()) });
    }

    fn delete(&mut self, family: Family, key: &[u8]) {
        let key_at = self.bytes.len();
        self.bytes.extend_from_slice(key);
        self.index.push(Put { family, key: key_at..self.bytes.len(), value: None });
    }

    /// Orders the puts by family and key, as RocksDB's memtable wants them.
    fn sort(&mut self) {
        let bytes = &self.bytes;
        self.index.sort_by(|a, b| {
            (a.family as u8)
                .cmp(&(b.family as u8))
                .then_with(|| bytes[a.key.clone()].cmp(&bytes[b.key.clone()]))
        });
    }

    fn write_batch(&self, store: &Store) -> WriteBatch {
        let bytes = &self.bytes;
        // Room for every key and value plus RocksDB's per-record header (tag, family id and two
        // lengths), so the batch is not regrown and copied as it fills.
        let mut batch = WriteBatch::with_capacity_bytes(bytes.len() + self.index.len() * 16 + 64);
        for put in &self.index {
            let family = store.cf(put.family.name());
            match &put.value {
                Some(value) => batch.put_cf(family, &bytes[put.key.clone()], &bytes[value.clone()]),
                None => batch.delete_cf(family, &bytes[put.key.clone()]),
            }
        }
        batch
    }
}

impl StateBatch {
    pub fn put_event(&mut self, scope: &Scope, event_time: i64, event_id: &str, encoded: &[u8]) {
        self.puts.put(Family::Events, &keys::event_key(scope, event_time, event_id), encoded);
    }

    /// A contact's fold state, replacing what was stored ([`contact_state::encode`]).
    pub fn put_contact_state(
        &mut self,
        (waba_id, phone_number_id, user_id): (&str, &str, &str),
        events: &[ContactEvent],
        journal: &ledger_core::StoredJournal,
    ) {
        let key = keys::contact_prefix(waba_id, phone_number_id, user_id);
        self.puts.put(Family::Contacts, &key, &contact_state::encode(events, journal));
    }

    /// As [`StateBatch::put_contact_state`], the journal already encoded
    /// ([`contact_state::encode_journal`]).
    pub fn put_contact_state_encoded(
        &mut self,
        (waba_id, phone_number_id, user_id): (&str, &str, &str),
        events: &[ContactEvent],
        journal: &[u8],
    ) {
        let key = keys::contact_prefix(waba_id, phone_number_id, user_id);
        self.puts.put(Family::Contacts, &key, &contact_state::encode_with_journal(events, journal));
    }

    /// Appends a journal entry, indexes it under its contact and account, and moves the usage
    /// counters it belongs to: `markets` (from pricing's market mapping) says how many of its
    /// recipients are in each market — one recipient, or a group message's participants (R59).
    /// With `received_by` (the running maximum of receive times at the entry's record) the
    /// moves are kept in `history` too.
    pub fn put_entry(&mut self, entry: &Entry, markets: &[(String, u64)], received_by: Option<i64>) {
        let encoded = ledger_proto::encode_entry(entry);
        self.puts.put(Family::Entries, &keys::entry_key(entry.id.0), &encoded);
        let context = entry.fact.context();
        let at = entry.fact.at().0;
        let waba_id = context.waba_id.as_str();
        let contact = Scope::Contact {
            waba_id: waba_id.to_owned(),
            phone_number_id: context.contact.phone_number_id.to_string(),
            user_id: context.contact.user_id.to_string(),
        };
        self.puts.put(Family::EntryIndex, &keys::entry_index_key(&contact, at, entry.id.0), &[]);
        let account = Scope::Account { waba_id: waba_id.to_owned() };
        self.puts.put(Family::EntryIndex, &keys::entry_index_key(&account, at, entry.id.0), &[]);

        let (unit, category, pricing_type) = entry.usage_columns();
        let sign = match entry.action {
            EntryAction::Post => 1,
            EntryAction::Reverse => -1,
        };
        for (market, recipients) in markets {
            let usage = UsageKey {
                waba_id: waba_id.to_owned(),
                month: context.local_month.to_string(),
                unit: unit.to_owned(),
                category: category.to_owned(),
                market: market.clone(),
                pricing_type: pricing_type.to_owned(),
            };
            let key = keys::usage_key(&usage);
            let delta = sign * *recipients as i64;
            if let Some(instant) = received_by {
                self.add_history(&key, HistoryCounter::Usage, instant, delta);
            }
            *self.usage.entry(key).or_default() += delta;
        }
    }

    fn add_history(&mut self, counter_key: &[u8], counter: HistoryCounter, instant: i64, delta: i64) {
        for grain in [keys::HistoryGrain::Hour, keys::HistoryGrain::Second] {
            *self.history.entry(keys::history_key(counter_key, counter, grain, instant)).or_default() +=
                delta;
        }
    }

    /// The running maximum of receive times after the batch's records (see `history`).
    pub fn set_received_by(&mut self, instant: i64) {
        self.received_by = Some(instant);
    }

    /// Keeps the allowance claim an entry makes or withdraws (R13, R26, R80): a posting of a
    /// fact that claims a pool puts the claim, a reversal deletes it. A claim moved across the
    /// free boundary is reversed and posted again, so it stays.
    pub fn move_claim(&mut self, entry: &Entry) {
        let Charge::Allowance(pool) = entry.fact.charge() else { return };
        let key = keys::claim_key(pool, entry.fact.at().0, entry.fact.id());
        match entry.action {
            EntryAction::Post => {
                let context = entry.fact.context();
                let owner = (context.waba_id.clone(), context.contact.clone());
                self.puts.put(Family::Allowances, &key, &keys::encode_claim(entry.fact.quantity(), &owner));
            }
            EntryAction::Reverse => self.puts.delete(Family::Allowances, &key),
        }
    }

    /// Records the WABA a business phone number's events came under.
    pub fn put_phone_number(&mut self, phone_number_id: &str, waba_id: &str) {
        self.puts.put(Family::Accounts, &keys::phone_number_key(phone_number_id), waba_id.as_bytes());
    }

    /// Sets (`Some`) or deletes (`None`) a key of pricing's own state.
    pub fn pricing_state(&mut self, key: &[u8], value: Option<&[u8]>) {
        let key = keys::pricing_state_key(key);
        match value {
            Some(value) => self.puts.put(Family::Accounts, &key, value),
            None => self.puts.delete(Family::Accounts, &key),
        }
    }

    /// Moves an invoice aggregate: `line` is pricing's encoding of the priced line; with
    /// `received_by` (as for [`StateBatch::put_entry`]) the move is kept in `history` too.
    pub fn add_billing(
        &mut self,
        waba_id: &str,
        month: &str,
        line: &[u8],
        delta: i64,
        received_by: Option<i64>,
    ) {
        let mut key = keys::usage_month_prefix(waba_id, month);
        key.extend_from_slice(line);
        if let Some(instant) = received_by {
            self.add_history(&key, HistoryCounter::Billing, instant, delta);
        }
        *self.billing.entry(key).or_default() += delta;
    }

    pub fn is_empty(&self) -> bool {
        self.puts.index.is_empty()
            && self.usage.is_empty()
            && self.billing.is_empty()
            && self.history.is_empty()
    }
}
