//! The contact stage's state: each contact's fold state is a value in the store's `contacts`
//! family ([`ledger_store::contact_state`]); the ledger keeps a bounded set of contacts in
//! memory in front of it. A contact outside that set is loaded when an event, an allowance
//! move or an account event needs it, and evicted again once its state is written.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use ledger_core::{
    AllowancePool, ContactKey, ContactStates, Ledger, StatesError, StoredClaim, StoredContact, WabaId,
};
use ledger_store::{ContactEvent, StateBatch, Store};

/// Default budget of the contacts kept in memory (`--state-cache-mb`).
pub const DEFAULT_STATE_CACHE_BYTES: usize = 256 << 20;

/// Memory a folded contact takes per byte of its encoded events (observations, the merged
/// messages, the facts and their postings), and what it takes whatever its events: measured
/// as resident memory over contacts folded (`ledger-bench pipeline`), rounded up.
const DECODED_PER_ENCODED_BYTE: usize = 6;
const PER_CONTACT_BYTES: usize = 1024;

type Key = (WabaId, ContactKey);

struct Cached {
    /// The contact's events as stored, in the order they were folded in.
    events: Vec<ContactEvent>,
    /// Its journal as last written ([`ledger_store::contact_state::encode_journal`]), while
    /// its postings have not moved since.
    journal: Option<Vec<u8>>,
    bytes: usize,
    /// The chunk that last touched the contact.
    last_chunk: u64,
}

/// The contacts in memory: their events, to write their state with, and what they cost.
pub(crate) struct ContactCache {
    contacts: HashMap<Key, Cached>,
    budget: usize,
    used: usize,
    /// The chunk being folded; chunks are numbered across batches.
    chunk: u64,
    /// The last chunk whose write landed (the writer thread moves it): contacts touched later
    /// stay in memory, or a load could read their state from before that chunk.
    committed: Arc<AtomicU64>,
}

impl ContactCache {
    /// `budget`: bytes of contacts kept in memory (`None`: every contact, for a store whose
    /// contact states were not written from its first record).
    pub fn new(budget: Option<usize>) -> Self {
        ContactCache {
            contacts: HashMap::new(),
            budget: budget.unwrap_or(usize::MAX),
            used: 0,
            chunk: 0,
            committed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// What the writer moves once a chunk's write landed.
    pub fn committed(&self) -> Arc<AtomicU64> {
        self.committed.clone()
    }

    pub fn set_budget(&mut self, bytes: usize) {
        self.budget = bytes;
    }

    /// Numbers the chunk about to be folded.
    pub fn start_chunk(&mut self) -> u64 {
        self.chunk += 1;
        self.chunk
    }

    /// Records an event the ledger accepted for `key`.
    pub fn push(&mut self, key: &Key, event: ContactEvent) {
        let chunk = self.chunk;
        if !self.contacts.contains_key(key) {
            let empty =
                Cached { events: Vec::new(), journal: None, bytes: PER_CONTACT_BYTES, last_chunk: chunk };
            self.contacts.insert(key.clone(), empty);
            self.used += PER_CONTACT_BYTES;
        }
        let cached = self.contacts.get_mut(key).expect("inserted above");
        let bytes = event.payload.len() * DECODED_PER_ENCODED_BYTE;
        cached.events.push(event);
        cached.bytes += bytes;
        cached.last_chunk = chunk;
        self.used += bytes;
    }

    /// Marks a resident contact as used by this chunk (its state is written with it).
    pub fn touch(&mut self, key: &Key) {
        if let Some(cached) = self.contacts.get_mut(key) {
            cached.last_chunk = self.chunk;
        }
    }

    /// Puts a resident contact's state into `batch` (nothing for one not in memory).
    /// `postings_moved`: whether the chunk posted or reversed any of its facts; if not, its
    /// journal is written as it was encoded last time.
    pub fn put_state(&mut self, batch: &mut StateBatch, ledger: &Ledger, key: &Key, postings_moved: bool) {
        let (waba_id, contact) = key;
        let Some(folded) = ledger.contact(waba_id, contact) else { return };
        let stored_key = (waba_id.as_str(), &*contact.phone_number_id, &*contact.user_id);
        let Some(cached) = self.contacts.get_mut(key) else {
            batch.put_contact_state(stored_key, &[], &folded.stored_journal());
            return;
        };
        if postings_moved || cached.journal.is_none() {
            let journal = ledger_store::contact_state::encode_journal(&folded.stored_journal());
            let before = cached.journal.as_ref().map_or(0, Vec::len);
            cached.bytes = cached.bytes + journal.len() - before;
            self.used = self.used + journal.len() - before;
            cached.journal = Some(journal);
        }
        let journal = cached.journal.as_deref().expect("encoded above");
        batch.put_contact_state_encoded(stored_key, &cached.events, journal);
    }

    /// Evicts the least recently used contacts until the cache is within its budget again,
    /// sparing those whose written state may not have landed yet (a later load would read an
    /// older state). The victims are chosen before the ledger's write lock is taken, so
    /// queries wait only for their removal.
    pub fn evict_over_budget(&mut self, ledger: &RwLock<Ledger>) {
        if self.used <= self.budget {
            return;
        }
        // Down to 90 %, so a full cache does not sort its contacts on every chunk.
        let target = self.budget / 10 * 9;
        let settled = self.committed.load(Ordering::Acquire);
        let mut candidates: Vec<(u64, &Key)> = self
            .contacts
            .iter()
            .filter(|(_, cached)| cached.last_chunk <= settled)
            .map(|(key, cached)| (cached.last_chunk, key))
            .collect();
        candidates.sort_unstable_by_key(|(chunk, _)| *chunk);
        let mut used = self.used;
        let mut victims = Vec::new();
        for (_, key) in candidates {
            if used <= target {
                break;
            }
            used -= self.contacts[key].bytes;
            victims.push(key.clone());
        }
        let mut ledger = ledger.write().unwrap_or_else(PoisonError::into_inner);
        for key in victims {
            if let Some(cached) = self.contacts.remove(&key) {
                self.used -= cached.bytes;
                ledger.evict(&key.0, &key.1);
            }
        }
        drop(ledger);
        metrics::gauge!("ledger_contact_cache_bytes").set(self.used as f64);
        metrics::gauge!("ledger_contact_cache_contacts").set(self.contacts.len() as f64);
    }

    fn insert_loaded(&mut self, key: &Key, events: Vec<ContactEvent>) {
        let bytes = PER_CONTACT_BYTES
            + events.iter().map(|e| e.payload.len() * DECODED_PER_ENCODED_BYTE).sum::<usize>();
        self.used += bytes;
        let loaded = Cached { events, journal: None, bytes, last_chunk: self.chunk };
        if let Some(old) = self.contacts.insert(key.clone(), loaded) {
            self.used -= old.bytes;
        }
    }
}

/// The store behind the ledger's contacts, recording what it loads in the cache.
pub(crate) struct StoreStates<'a> {
    pub store: &'a Store,
    pub cache: &'a mut ContactCache,
}

impl ContactStates for StoreStates<'_> {
    fn load(&mut self, waba_id: &WabaId, contact: &ContactKey) -> Result<Option<StoredContact>, StatesError> {
        let state = self
            .store
            .contact_state(waba_id.as_str(), &contact.phone_number_id, &contact.user_id)
            .map_err(|e| StatesError(e.to_string()))?;
        let Some(state) = state else { return Ok(None) };
        let stored = state.to_stored().map_err(|e| StatesError(e.to_string()))?;
        self.cache.insert_loaded(&(waba_id.clone(), contact.clone()), state.events);
        Ok(Some(stored))
    }

    fn contacts_of(&mut self, waba_id: &WabaId) -> Result<Vec<ContactKey>, StatesError> {
        let stored = self.store.contacts_of(waba_id.as_str()).map_err(|e| StatesError(e.to_string()))?;
        Ok(stored.into_iter().map(|(phone, user)| ContactKey::new(&phone, &user)).collect())
    }

    fn pool_claims(&mut self, pool: &AllowancePool) -> Result<Vec<StoredClaim>, StatesError> {
        self.store.pool_claims(pool).map_err(|e| StatesError(e.to_string()))
    }
}
