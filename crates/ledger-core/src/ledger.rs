//! The ledger over many accounts: routes events to contacts, keeps each account's settings and
//! template catalogue, resolves allowances across contacts and keeps the journal.

use crate::allowance::{Allowance, Owner};
use crate::catalog::TemplateCatalog;
use crate::contact::{ContactLedger, Eligibility, FactDiff, FoldContext, Ingested};
use crate::era::AccountClock;
use crate::event::{
    parse_time_zone, AccountSettings, ContactKey, Event, EventError, EventId, EventKind, WabaId,
};
use crate::fact::{AllowancePool, Charge, Fact, FactId};
use crate::journal::{Entry, Journal, Resolution, StoredJournal};
use crate::settings::RuleSettings;
use crate::time::{LocalMonth, Timestamp};

/// What the fold is configured with besides the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerConfig {
    /// The rule settings for the points the sources leave open (R80, R82, Q14). A store
    /// records them; see [`RuleSettings`].
    pub rules: RuleSettings,
    /// Overrides the spec's 1,000 free claims per allowance month (R13, R26, R80). Only for
    /// simulations and tests that need allowances to fill up with few events.
    pub allowance_limit: Option<usize>,
}

/// One claim an allowance granted free: see [`Ledger::free_grants`].
#[derive(Debug, Clone)]
pub struct FreeGrant {
    pub pool: AllowancePool,
    /// Free claims the pool grants a month.
    pub limit: usize,
    /// The claim's place in the pool's time order: (instant, fact id).
    pub at: Timestamp,
    pub fact_id: FactId,
    /// The standing free posting.
    pub posted: Entry,
    /// The same fact posted billable, as it stands when the claim is not among the first.
    pub if_billable: Entry,
}

/// A contact's state as a store keeps it: the events it accepted and its journal's postings.
#[derive(Debug, Clone, Default)]
pub struct StoredContact {
    pub events: Vec<Event>,
    pub journal: StoredJournal,
}

/// One allowance claim as a store keeps it: the pool's ordered key (instant, fact id), the
/// units it draws and the contact whose fact it is (R13, R26, R80).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredClaim {
    pub at: Timestamp,
    pub fact_id: FactId,
    pub units: u64,
    pub owner: (WabaId, ContactKey),
}

/// Where contacts and allowance pools that are not in memory are kept. The ledger asks for a
/// contact when an event, an allowance move or an account event needs it, and for a pool when
/// a claim on it is first made or withdrawn; a ledger that holds everything has none.
pub trait ContactStates {
    /// The stored state of a contact that is not in memory, if it has one.
    fn load(&mut self, waba_id: &WabaId, contact: &ContactKey) -> Result<Option<StoredContact>, StatesError>;
    /// Every contact of the account the store holds, resident or not.
    fn contacts_of(&mut self, waba_id: &WabaId) -> Result<Vec<ContactKey>, StatesError>;
    /// The stored claims of a pool that is not in memory, in any order (none for a new pool).
    fn pool_claims(&mut self, pool: &AllowancePool) -> Result<Vec<StoredClaim>, StatesError>;
}

/// A failure to read a stored contact, as the store reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StatesError(pub String);

/// Everything in memory: nothing to load.
#[derive(Debug, Default, Clone, Copy)]
pub struct InMemory;

impl ContactStates for InMemory {
    fn load(&mut self, _: &WabaId, _: &ContactKey) -> Result<Option<StoredContact>, StatesError> {
        Ok(None)
    }

    fn contacts_of(&mut self, _: &WabaId) -> Result<Vec<ContactKey>, StatesError> {
        Ok(Vec::new())
    }

    fn pool_claims(&mut self, _: &AllowancePool) -> Result<Vec<StoredClaim>, StatesError> {
        Ok(Vec::new())
    }
}

/// Why folding an event failed: the event was refused, or a stored contact could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    #[error(transparent)]
    Refused(#[from] EventError),
    /// `what`: the contact loaded (`waba/phone number/user`), or the account listed.
    #[error("loading {what}: {reason}")]
    State { what: String, reason: String },
}

impl FoldError {
    fn state(owner: &Owner, reason: impl std::fmt::Display) -> FoldError {
        let what = format!("contact {}/{}/{}", owner.0, owner.1.phone_number_id, owner.1.user_id);
        FoldError::State { what, reason: reason.to_string() }
    }
}

#[derive(Debug)]
struct Account {
    /// The settings event in force: the latest by (event time, event id).
    settings: Option<(Timestamp, EventId, AccountSettings)>,
    clock: AccountClock,
    catalog: TemplateCatalog,
    account_events: foldhash::HashMap<EventId, Event>,
    contacts: foldhash::HashMap<ContactKey, ContactLedger>,
}

impl Account {
    /// Takes in an account event (settings, category change, tier update); true if the
    /// account's contacts must be re-folded under what it changed.
    fn record(&mut self, event: Event) -> Result<bool, EventError> {
        let mut refold = false;
        match &event.kind {
            EventKind::AccountSettings(new) => {
                let newer = self
                    .settings
                    .as_ref()
                    .is_none_or(|(t, id, _)| (*t, id) < (event.event_time, &event.event_id));
                if newer {
                    let tz = parse_time_zone(&new.time_zone)?;
                    self.settings = Some((event.event_time, event.event_id.clone(), new.clone()));
                    let next = AccountClock::new(tz, false);
                    if next != self.clock {
                        self.clock = next;
                        refold = true;
                    }
                }
            }
            EventKind::TemplateCategoryChange(change) => {
                self.catalog.record(&event.event_id, change);
                refold = true;
            }
            // Pricing input (R55): kept with the account, no effect on the fold.
            EventKind::VolumeTierUpdate(_) => {}
            _ => unreachable!("validate() rejects contact-scoped events without a contact"),
        }
        self.account_events.insert(event.event_id.clone(), event);
        Ok(refold)
    }

    fn new() -> Self {
        Account {
            settings: None,
            clock: AccountClock::utc_assumed(),
            catalog: TemplateCatalog::default(),
            account_events: foldhash::HashMap::default(),
            contacts: foldhash::HashMap::default(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Ledger {
    config: LedgerConfig,
    accounts: foldhash::HashMap<WabaId, Account>,
    allowances: foldhash::HashMap<AllowancePool, Allowance>,
    /// The account each business phone number was seen under, for queries that name a
    /// contact without its WABA.
    phone_numbers: foldhash::HashMap<std::sync::Arc<str>, WabaId>,
}

impl Ledger {
    pub fn new(config: LedgerConfig) -> Self {
        Ledger { config, ..Ledger::default() }
    }

    pub fn config(&self) -> LedgerConfig {
        self.config
    }

    /// Folds one event in, appending the journal entries it causes to `out`.
    pub fn apply(&mut self, event: Event, out: &mut Vec<Entry>) -> Result<Ingested, EventError> {
        match self.apply_with(event, &mut InMemory, out) {
            Ok(ingested) => Ok(ingested),
            Err(FoldError::Refused(error)) => Err(error),
            Err(FoldError::State { .. }) => unreachable!("nothing is loaded from memory"),
        }
    }

    /// As [`Ledger::apply`], loading from `states` the contacts the event needs that are not
    /// in memory: its own, those whose allowance claims it moves, an account's on an account
    /// event.
    pub fn apply_with(
        &mut self,
        event: Event,
        states: &mut dyn ContactStates,
        out: &mut Vec<Entry>,
    ) -> Result<Ingested, FoldError> {
        event.validate()?;
        let config = self.config;
        // Look up before inserting: cloning a key costs atomic reference counting per event.
        if !self.accounts.contains_key(&event.waba_id) {
            self.accounts.insert(event.waba_id.clone(), Account::new());
        }
        if let Some(contact_key) = event.contact.clone() {
            if !self.phone_numbers.contains_key(&contact_key.phone_number_id) {
                self.phone_numbers.insert(contact_key.phone_number_id.clone(), event.waba_id.clone());
            }
            let owner: Owner = (event.waba_id.clone(), contact_key);
            let stored = make_resident(config, &mut self.accounts, states, &owner)?;
            let Account { clock, catalog, contacts, .. } =
                self.accounts.get_mut(&owner.0).expect("inserted above");
            if !stored {
                contacts.insert(owner.1.clone(), ContactLedger::default());
            }
            let ctx =
                FoldContext { clock, catalog, rules: config.rules, waba_id: &owner.0, contact: &owner.1 };
            let mut diff = FactDiff::default();
            let contact = contacts.get_mut(&owner.1).expect("resident or inserted above");
            let ingested = contact.apply(event, &ctx, &mut diff);
            settle(config, &mut self.accounts, states, &mut self.allowances, &owner, diff, out)?;
            return Ok(ingested);
        }

        let account = self.accounts.get_mut(&event.waba_id).expect("inserted above");
        if let Some(existing) = account.account_events.get(&event.event_id) {
            return Ok(match existing.first_difference(&event) {
                None => Ingested::Exists,
                Some(field) => Ingested::ExistsWithDifferent(field),
            });
        }
        let waba_id = event.waba_id.clone();
        if account.record(event)? {
            // A late account fact is just another late event: re-fold every contact it touches.
            refold_account(config, &mut self.accounts, states, &waba_id, &mut self.allowances, out)?;
        }
        Ok(Ingested::Created)
    }

    /// Re-folds every contact from its events and returns the entries that causes. On a
    /// consistent ledger this is empty: incremental application equals folding from scratch.
    pub fn refold_all(&mut self) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut wabas: Vec<WabaId> = self.accounts.keys().cloned().collect();
        wabas.sort_unstable();
        for waba_id in wabas {
            refold_account(
                self.config,
                &mut self.accounts,
                &mut InMemory,
                &waba_id,
                &mut self.allowances,
                &mut out,
            )
            .expect("nothing is loaded from memory");
        }
        out
    }

    /// Takes in an account event a store kept (settings, category change, tier update) without
    /// re-folding anything: the stored contacts were folded under it already. In any order.
    pub fn restore_account_event(&mut self, event: Event) -> Result<(), EventError> {
        event.validate()?;
        if event.contact.is_some() {
            // A contact's events are restored with its state, never one by one.
            return Err(EventError::UnexpectedContact { kind: event.kind.name() });
        }
        let account = self.accounts.entry(event.waba_id.clone()).or_insert_with(Account::new);
        account.record(event)?;
        Ok(())
    }

    /// Takes in a business phone number's account as a store kept it.
    pub fn restore_phone_number(&mut self, phone_number_id: &str, waba_id: WabaId) {
        self.accounts.entry(waba_id.clone()).or_insert_with(Account::new);
        self.phone_numbers.insert(phone_number_id.into(), waba_id);
    }

    /// Whether `pool` is in memory (a pool a store keeps is loaded when first needed).
    pub fn has_pool(&self, pool: &AllowancePool) -> bool {
        self.allowances.contains_key(pool)
    }

    /// Brings a pool into memory from its stored claims, unless it is there already (then the
    /// resident pool is the newer).
    pub fn restore_pool(&mut self, pool: &AllowancePool, claims: Vec<StoredClaim>) {
        if !self.allowances.contains_key(pool) {
            insert_pool(self.config, &mut self.allowances, pool, claims);
        }
    }

    /// The pools an eligibility answer counts against that are not in memory: load them
    /// ([`Ledger::restore_pool`]) and ask again for the allowance use.
    pub fn pools_not_loaded(&self, answer: &Eligibility) -> Vec<AllowancePool> {
        let mut pools = Vec::new();
        for preview in [&answer.free_form, &answer.marketing, &answer.utility, &answer.authentication] {
            if let Some(Charge::Allowance(pool)) = &preview.charge {
                if !self.allowances.contains_key(pool) && !pools.contains(pool) {
                    pools.push(pool.clone());
                }
            }
        }
        pools
    }

    /// Eligibility of a pair at `at` (events with time ≤ `at`), with allowance use filled in.
    pub fn eligibility(&self, waba_id: &WabaId, contact: &ContactKey, at: Timestamp) -> Eligibility {
        self.eligibility_of(waba_id, contact, None, at)
    }

    /// As [`Ledger::eligibility`] for a contact that is not in memory, from its stored state
    /// (`None`: a contact nothing is stored for). A resident contact is answered from memory.
    pub fn eligibility_of(
        &self,
        waba_id: &WabaId,
        contact: &ContactKey,
        stored: Option<StoredContact>,
        at: Timestamp,
    ) -> Eligibility {
        self.eligibility_at(waba_id, contact, stored, |_| Some(at)).expect("an instant is given").1
    }

    /// The contact's state as of its latest event (the timeline's snapshot): that instant and
    /// eligibility then, from memory or from `stored`; `None` for a contact without events.
    pub fn latest_eligibility_of(
        &self,
        waba_id: &WabaId,
        contact: &ContactKey,
        stored: Option<StoredContact>,
    ) -> Option<(Timestamp, Eligibility)> {
        self.eligibility_at(waba_id, contact, stored, ContactLedger::latest_event_time)
    }

    /// Eligibility at the instant `at` picks from the contact's fold (none: no answer).
    fn eligibility_at(
        &self,
        waba_id: &WabaId,
        contact: &ContactKey,
        stored: Option<StoredContact>,
        at: impl FnOnce(&ContactLedger) -> Option<Timestamp>,
    ) -> Option<(Timestamp, Eligibility)> {
        let empty = ContactLedger::default();
        let fallback;
        let (clock, catalog, resident) = match self.accounts.get(waba_id) {
            Some(account) => (&account.clock, &account.catalog, account.contacts.get(contact)),
            None => {
                fallback = Account::new();
                (&fallback.clock, &fallback.catalog, None)
            }
        };
        let ctx = FoldContext { clock, catalog, rules: self.config.rules, waba_id, contact };
        let loaded;
        let ledger = match (resident, stored) {
            (Some(resident), _) => resident,
            (None, Some(stored)) => {
                loaded = ContactLedger::restore(stored.events, &stored.journal, &ctx);
                &loaded
            }
            (None, None) => &empty,
        };
        let at = at(ledger)?;
        let mut answer = ledger.eligibility(&ctx, at);
        for preview in
            [&mut answer.free_form, &mut answer.marketing, &mut answer.utility, &mut answer.authentication]
        {
            if let Some(Charge::Allowance(pool)) = &preview.charge {
                let limit = pool_limit(self.config, pool) as u64;
                preview.allowance_used = Some(self.allowances.get(pool).map_or(0, |a| a.used_before(at)));
                preview.allowance_limit = Some(limit);
            }
            preview.summary = preview.summarize();
        }
        Some((at, answer))
    }

    /// The entries standing after netting reversals, sorted by instant (a conversation before
    /// the message that opened it), then id, for stable output.
    pub fn live_entries(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self
            .accounts
            .values()
            .flat_map(|account| account.contacts.values())
            .flat_map(|contact| contact.journal.live_entries())
            .collect();
        entries.sort_by_key(|e| (e.fact.at(), matches!(&*e.fact, Fact::MessageBilled(_)), e.id));
        entries
    }

    /// The allowance claims of an account's month this ledger granted free (R13, R26, R80),
    /// each with its posting and the entry it would be if billable.
    ///
    /// A ledger that folds only part of an account's contacts (one partition of a partitioned
    /// log) grants its own first `limit` claims. The account's true free claims are the earliest
    /// `limit` of the union of the parts' grants: a claim among the account's first `limit` is
    /// among its own part's first `limit`. [`FreeGrant`] carries what such a merge needs.
    ///
    /// `stored(waba, contact, fact)` gives the standing posting of a fact whose contact is not
    /// in memory.
    pub fn free_grants(
        &self,
        waba_id: &WabaId,
        month: LocalMonth,
        stored: &mut dyn FnMut(&WabaId, &ContactKey, FactId) -> Option<Entry>,
    ) -> Vec<FreeGrant> {
        let mut grants = Vec::new();
        for (pool, allowance) in &self.allowances {
            if pool.month != month {
                continue;
            }
            for (&(at, fact_id), owner) in allowance.free() {
                if owner.0 != *waba_id {
                    break; // A pool belongs to one account (a WABA, or one of its numbers).
                }
                let posted = match self.journal_of(owner) {
                    Some(journal) => journal.live_entry(fact_id),
                    None => stored(&owner.0, &owner.1, fact_id),
                };
                let Some(posted) = posted else { continue };
                // As `resolve` decides a claim outside the allowance.
                let if_billable = posted.with_resolution(Resolution::of(posted.fact.charge(), false));
                grants.push(FreeGrant {
                    pool: pool.clone(),
                    limit: allowance.limit(),
                    at,
                    fact_id,
                    posted,
                    if_billable,
                });
            }
        }
        grants
    }

    /// Units drawn from `pool` by claims before `at`, among the contacts folded into this
    /// ledger (R13, R26, R80).
    pub fn allowance_used_before(&self, pool: &AllowancePool, at: Timestamp) -> u64 {
        self.allowances.get(pool).map_or(0, |a| a.used_before(at))
    }

    /// The WABA a business phone number's events came under, if any arrived.
    pub fn waba_of_phone_number(&self, phone_number_id: &str) -> Option<&WabaId> {
        self.phone_numbers.get(phone_number_id)
    }

    /// The contacts of an account that events arrived for, in no particular order.
    pub fn contacts_of<'a>(&'a self, waba_id: &WabaId) -> impl Iterator<Item = &'a ContactKey> + 'a {
        self.accounts.get(waba_id).into_iter().flat_map(|account| account.contacts.keys())
    }

    pub fn contact(&self, waba_id: &WabaId, contact: &ContactKey) -> Option<&ContactLedger> {
        self.accounts.get(waba_id)?.contacts.get(contact)
    }

    /// Drops a contact from memory (its state must be stored first: see [`ContactStates`]).
    /// Its claims stay in the account's allowances, which are the account's, not the
    /// contact's.
    pub fn evict(&mut self, waba_id: &WabaId, contact: &ContactKey) -> bool {
        self.accounts.get_mut(waba_id).is_some_and(|account| account.contacts.remove(contact).is_some())
    }

    /// Drops every contact from memory (all stored: see [`ContactStates`]).
    pub fn evict_all_contacts(&mut self) {
        for account in self.accounts.values_mut() {
            account.contacts.clear();
        }
    }

    /// Contacts held in memory.
    pub fn resident_contacts(&self) -> usize {
        self.accounts.values().map(|account| account.contacts.len()).sum()
    }

    fn journal_of(&self, (waba_id, contact): &Owner) -> Option<&Journal> {
        Some(&self.contact(waba_id, contact)?.journal)
    }
}

fn refold_account(
    config: LedgerConfig,
    accounts: &mut foldhash::HashMap<WabaId, Account>,
    states: &mut dyn ContactStates,
    waba_id: &WabaId,
    allowances: &mut foldhash::HashMap<AllowancePool, Allowance>,
    out: &mut Vec<Entry>,
) -> Result<(), FoldError> {
    let Some(account) = accounts.get(waba_id) else { return Ok(()) };
    let mut keys: Vec<ContactKey> = account.contacts.keys().cloned().collect();
    let stored = states.contacts_of(waba_id).map_err(|e| FoldError::State {
        what: format!("the contacts of account {waba_id}"),
        reason: e.to_string(),
    })?;
    keys.extend(stored);
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let owner = (waba_id.clone(), key);
        make_resident(config, accounts, states, &owner)?;
        let Some(account) = accounts.get_mut(waba_id) else { return Ok(()) };
        let Account { clock, catalog, contacts, .. } = account;
        let ctx = FoldContext { clock, catalog, rules: config.rules, waba_id, contact: &owner.1 };
        let mut diff = FactDiff::default();
        if let Some(contact) = contacts.get_mut(&owner.1) {
            contact.refold(&ctx, &mut diff);
        }
        settle(config, accounts, states, allowances, &owner, diff, out)?;
    }
    Ok(())
}

/// Brings `owner` into memory from `states` if it is stored and not resident; true if it is
/// in memory now, false if it is neither resident nor stored.
fn make_resident(
    config: LedgerConfig,
    accounts: &mut foldhash::HashMap<WabaId, Account>,
    states: &mut dyn ContactStates,
    owner: &Owner,
) -> Result<bool, FoldError> {
    let Some(account) = accounts.get_mut(&owner.0) else { return Ok(false) };
    if account.contacts.contains_key(&owner.1) {
        return Ok(true);
    }
    let Some(stored) = states.load(&owner.0, &owner.1).map_err(|e| FoldError::state(owner, e))? else {
        return Ok(false);
    };
    let Account { clock, catalog, contacts, .. } = account;
    let ctx = FoldContext { clock, catalog, rules: config.rules, waba_id: &owner.0, contact: &owner.1 };
    let contact = ContactLedger::restore(stored.events, &stored.journal, &ctx);
    contacts.insert(owner.1.clone(), contact);
    Ok(true)
}

fn journal_mut<'a>(
    accounts: &'a mut foldhash::HashMap<WabaId, Account>,
    (waba_id, contact): &Owner,
) -> Option<&'a mut Journal> {
    Some(&mut accounts.get_mut(waba_id)?.contacts.get_mut(contact)?.journal)
}

/// Turns `owner`'s fact changes into journal entries, moving allowance grants (and re-posting
/// the facts of the contacts that own them, loaded from `states` if need be) as needed.
fn settle(
    config: LedgerConfig,
    accounts: &mut foldhash::HashMap<WabaId, Account>,
    states: &mut dyn ContactStates,
    allowances: &mut foldhash::HashMap<AllowancePool, Allowance>,
    owner: &Owner,
    diff: FactDiff,
    out: &mut Vec<Entry>,
) -> Result<(), FoldError> {
    if diff.is_empty() {
        return Ok(());
    }
    let mut moved: Vec<(FactId, Owner)> = Vec::new();
    for (id, fact) in &diff.removed {
        if let Some(journal) = journal_mut(accounts, owner) {
            journal.reverse(*id, out);
        }
        if let Charge::Allowance(pool) = fact.charge() {
            load_pool(config, allowances, states, pool)?;
            if let Some(allowance) = allowances.get_mut(pool) {
                moved.extend(allowance.remove((fact.at(), *id)));
            }
        }
    }
    for (id, fact) in &diff.added {
        if let Charge::Allowance(pool) = fact.charge() {
            load_pool(config, allowances, states, pool)?;
            let allowance = allowances.get_mut(pool).expect("loaded above");
            moved.extend(allowance.insert((fact.at(), *id), fact.quantity(), owner));
        }
    }
    for (id, fact) in diff.added {
        let resolution = resolve(allowances, id, &fact);
        if let Some(journal) = journal_mut(accounts, owner) {
            journal.post(id, fact, resolution, out);
        }
    }
    for (id, who) in moved {
        // The claim's owner may be stored but not in memory: its posting moves all the same.
        if !make_resident(config, accounts, states, &who)? {
            continue;
        }
        let Some(journal) = journal_mut(accounts, &who) else { continue };
        let Some((fact, posted)) = journal.live(id) else { continue };
        let fact = fact.clone();
        let resolution = resolve(allowances, id, &fact);
        if resolution != posted {
            journal.reverse(id, out);
            journal.post(id, fact, resolution, out);
        }
    }
    Ok(())
}

/// Free claims a pool grants a month (R13, R26, R80), or the configured override.
fn pool_limit(config: LedgerConfig, pool: &AllowancePool) -> usize {
    config.allowance_limit.unwrap_or(pool.kind.limit())
}

/// Brings `pool` into memory from `states` (empty if nothing is stored) unless it is there.
/// Pools stay in memory once loaded: only the fold changes them, so a pool not in memory is
/// as its stored claims say.
fn load_pool(
    config: LedgerConfig,
    allowances: &mut foldhash::HashMap<AllowancePool, Allowance>,
    states: &mut dyn ContactStates,
    pool: &AllowancePool,
) -> Result<(), FoldError> {
    if allowances.contains_key(pool) {
        return Ok(());
    }
    let claims = states.pool_claims(pool).map_err(|e| FoldError::State {
        what: format!("allowance pool {}/{}/{}", pool.kind.as_str(), pool.scope, pool.month),
        reason: e.to_string(),
    })?;
    insert_pool(config, allowances, pool, claims);
    Ok(())
}

/// A pool in memory from its stored claims.
fn insert_pool(
    config: LedgerConfig,
    allowances: &mut foldhash::HashMap<AllowancePool, Allowance>,
    pool: &AllowancePool,
    claims: Vec<StoredClaim>,
) {
    allowances.insert(pool.clone(), Allowance::of_claims(pool_limit(config, pool), claims));
}

fn resolve(allowances: &foldhash::HashMap<AllowancePool, Allowance>, id: FactId, fact: &Fact) -> Resolution {
    let within = match fact.charge() {
        Charge::Allowance(pool) => allowances.get(pool).is_some_and(|a| a.is_free(&(fact.at(), id))),
        _ => false,
    };
    Resolution::of(fact.charge(), within)
}
