//! The ledger over many accounts: routes events to contacts, keeps each account's settings and
//! template catalogue, resolves allowances across contacts and keeps the journal.

use crate::allowance::Allowance;
use crate::catalog::TemplateCatalog;
use crate::contact::{ContactLedger, Eligibility, FactDiff, FoldContext, Ingested};
use crate::era::AccountClock;
use crate::event::{
    parse_time_zone, AccountSettings, ContactKey, Event, EventError, EventId, EventKind, WabaId,
};
use crate::fact::{AllowancePool, Charge, Fact, FactId};
use crate::journal::{Entry, Journal, Resolution};
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
    journal: Journal,
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
        event.validate()?;
        let config = self.config;
        // Look up before inserting: cloning a key costs atomic reference counting per event.
        if !self.accounts.contains_key(&event.waba_id) {
            self.accounts.insert(event.waba_id.clone(), Account::new());
        }
        let account = self.accounts.get_mut(&event.waba_id).expect("inserted above");
        let Account { clock, catalog, contacts, account_events, settings } = account;

        if let Some(contact_key) = event.contact.clone() {
            if !self.phone_numbers.contains_key(&contact_key.phone_number_id) {
                self.phone_numbers.insert(contact_key.phone_number_id.clone(), event.waba_id.clone());
            }
            let waba_id = event.waba_id.clone();
            let ctx =
                FoldContext { clock, catalog, rules: config.rules, waba_id: &waba_id, contact: &contact_key };
            let mut diff = FactDiff::default();
            if !contacts.contains_key(&contact_key) {
                contacts.insert(contact_key.clone(), ContactLedger::default());
            }
            let contact = contacts.get_mut(&contact_key).expect("inserted above");
            let ingested = contact.apply(event, &ctx, &mut diff);
            settle(config.allowance_limit, &mut self.journal, &mut self.allowances, diff, out);
            return Ok(ingested);
        }

        if let Some(existing) = account_events.get(&event.event_id) {
            return Ok(match existing.first_difference(&event) {
                None => Ingested::Exists,
                Some(field) => Ingested::ExistsWithDifferent(field),
            });
        }
        let mut refold_all = false;
        match &event.kind {
            EventKind::AccountSettings(new) => {
                let newer =
                    settings.as_ref().is_none_or(|(t, id, _)| (*t, id) < (event.event_time, &event.event_id));
                if newer {
                    let tz = parse_time_zone(&new.time_zone)?;
                    *settings = Some((event.event_time, event.event_id.clone(), new.clone()));
                    let next = AccountClock::new(tz, false);
                    if next != *clock {
                        *clock = next;
                        refold_all = true;
                    }
                }
            }
            EventKind::TemplateCategoryChange(change) => {
                catalog.record(&event.event_id, change);
                refold_all = true;
            }
            // Pricing input (R55): kept with the account, no effect on the fold.
            EventKind::VolumeTierUpdate(_) => {}
            _ => unreachable!("validate() rejects contact-scoped events without a contact"),
        }
        let waba_id = event.waba_id.clone();
        account_events.insert(event.event_id.clone(), event);
        if refold_all {
            // A late account fact is just another late event: re-fold every contact it touches.
            refold_account(config, account, &waba_id, &mut self.journal, &mut self.allowances, out);
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
            if let Some(account) = self.accounts.get_mut(&waba_id) {
                refold_account(
                    self.config,
                    account,
                    &waba_id,
                    &mut self.journal,
                    &mut self.allowances,
                    &mut out,
                );
            }
        }
        out
    }

    /// Eligibility of a pair at `at` (events with time ≤ `at`), with allowance use filled in.
    pub fn eligibility(&self, waba_id: &WabaId, contact: &ContactKey, at: Timestamp) -> Eligibility {
        let empty = ContactLedger::default();
        let fallback;
        let (clock, catalog, ledger) = match self.accounts.get(waba_id) {
            Some(account) => {
                (&account.clock, &account.catalog, account.contacts.get(contact).unwrap_or(&empty))
            }
            None => {
                fallback = Account::new();
                (&fallback.clock, &fallback.catalog, &empty)
            }
        };
        let ctx = FoldContext { clock, catalog, rules: self.config.rules, waba_id, contact };
        let mut answer = ledger.eligibility(&ctx, at);
        for preview in
            [&mut answer.free_form, &mut answer.marketing, &mut answer.utility, &mut answer.authentication]
        {
            if let Some(Charge::Allowance(pool)) = &preview.charge {
                let limit = self.config.allowance_limit.unwrap_or(pool.kind.limit()) as u64;
                preview.allowance_used = Some(self.allowances.get(pool).map_or(0, |a| a.used_before(at)));
                preview.allowance_limit = Some(limit);
            }
            preview.summary = preview.summarize();
        }
        answer
    }

    /// The entries standing after netting reversals, sorted by instant (a conversation before
    /// the message that opened it), then id, for stable output.
    pub fn live_entries(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self.journal.live_entries().collect();
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
    pub fn free_grants(&self, waba_id: &WabaId, month: LocalMonth) -> Vec<FreeGrant> {
        let mut grants = Vec::new();
        for (pool, allowance) in &self.allowances {
            if pool.month != month {
                continue;
            }
            for &(at, fact_id) in allowance.free() {
                let Some(posted) = self.journal.live_entry(fact_id) else { continue };
                if posted.fact.context().waba_id != *waba_id {
                    break; // A pool belongs to one account (a WABA, or one of its numbers).
                }
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
}

fn refold_account(
    config: LedgerConfig,
    account: &mut Account,
    waba_id: &WabaId,
    journal: &mut Journal,
    allowances: &mut foldhash::HashMap<AllowancePool, Allowance>,
    out: &mut Vec<Entry>,
) {
    let Account { clock, catalog, contacts, .. } = account;
    let mut keys: Vec<ContactKey> = contacts.keys().cloned().collect();
    keys.sort_unstable();
    for key in keys {
        let ctx = FoldContext { clock, catalog, rules: config.rules, waba_id, contact: &key };
        let mut diff = FactDiff::default();
        if let Some(contact) = contacts.get_mut(&key) {
            contact.refold(&ctx, &mut diff);
        }
        settle(config.allowance_limit, journal, allowances, diff, out);
    }
}

/// Turns a contact's fact changes into journal entries, moving allowance grants as needed.
fn settle(
    allowance_limit: Option<usize>,
    journal: &mut Journal,
    allowances: &mut foldhash::HashMap<AllowancePool, Allowance>,
    diff: FactDiff,
    out: &mut Vec<Entry>,
) {
    if diff.is_empty() {
        return;
    }
    let mut moved: Vec<FactId> = Vec::new();
    for (id, fact) in &diff.removed {
        journal.reverse(*id, out);
        if let Charge::Allowance(pool) = fact.charge() {
            if let Some(allowance) = allowances.get_mut(pool) {
                moved.extend(allowance.remove((fact.at(), *id)));
            }
        }
    }
    for (id, fact) in &diff.added {
        if let Charge::Allowance(pool) = fact.charge() {
            let limit = allowance_limit.unwrap_or(pool.kind.limit());
            let allowance = allowances.entry(pool.clone()).or_insert_with(|| Allowance::new(limit));
            moved.extend(allowance.insert((fact.at(), *id), fact.quantity()));
        }
    }
    for (id, fact) in diff.added {
        let resolution = resolve(allowances, id, &fact);
        journal.post(id, fact, resolution, out);
    }
    for id in moved {
        let Some((fact, posted)) = journal.live(id) else { continue };
        let fact = fact.clone();
        let resolution = resolve(allowances, id, &fact);
        if resolution != posted {
            journal.reverse(id, out);
            journal.post(id, fact, resolution, out);
        }
    }
}

fn resolve(allowances: &foldhash::HashMap<AllowancePool, Allowance>, id: FactId, fact: &Fact) -> Resolution {
    let within = match fact.charge() {
        Charge::Allowance(pool) => allowances.get(pool).is_some_and(|a| a.is_free(&(fact.at(), id))),
        _ => false,
    };
    Resolution::of(fact.charge(), within)
}
