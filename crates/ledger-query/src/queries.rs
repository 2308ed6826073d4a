//! Answers to the questions the API and `ledger query` ask, over the store (timelines, usage,
//! entries) and the projector's in-memory ledger (eligibility, which needs account-wide
//! allowance state).

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use ledger_core::{
    AllowancePool, Charge, ContactKey, Entry, EntryAction, Event, Ledger, LedgerConfig, LocalMonth,
    Timestamp, WabaId,
};
use ledger_log::EventLog;
use ledger_pricing::attribution::{self, AdSource};
use ledger_pricing::reconcile::{self, MessageReport, PeriodReport, TierReport, Tolerance};
use ledger_pricing::{Invoice, LineKey, PricedEligibility, Pricer, Pricing};
use ledger_store::{EntryCursor, Scope, Store, StoreError};
use serde::Serialize;

use crate::billing::{live_entries, Replay};
use crate::views::{EntryView, ExplanationView};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    /// Outside the caller's scope (see `access`).
    #[error("{0}")]
    Forbidden(String),
    /// Too many expensive answers at once: retry later.
    #[error("{0}")]
    Busy(String),
    #[error("the ledger is still loading its state")]
    NotReady,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The `month` a route cannot answer without.
pub fn required_month(month: Option<String>) -> Result<String, QueryError> {
    month.ok_or_else(|| QueryError::BadRequest("month=YYYY-MM is required".into()))
}

pub fn parse_month(text: &str) -> Result<LocalMonth, QueryError> {
    text.parse().map_err(|_| QueryError::BadRequest(format!("month {text:?} is not YYYY-MM")))
}

/// An instant given as Unix seconds (within the instants events may carry, 2010–2099) or RFC
/// 3339 (any date-time).
pub fn parse_instant(text: &str) -> Result<Timestamp, QueryError> {
    use ledger_core::event::{EVENT_TIME_MAX, EVENT_TIME_MIN};
    if let Ok(seconds) = text.parse::<i64>() {
        if !(EVENT_TIME_MIN..EVENT_TIME_MAX).contains(&seconds) {
            return Err(QueryError::BadRequest(format!(
                "{seconds} is outside {EVENT_TIME_MIN}..{EVENT_TIME_MAX} (2010-01-01 to 2100-01-01 UTC, in Unix seconds)"
            )));
        }
        return Ok(Timestamp(seconds));
    }
    chrono::DateTime::parse_from_rfc3339(text).map(|t| Timestamp(t.timestamp())).map_err(|_| {
        QueryError::BadRequest(format!("{text:?} is neither Unix seconds nor an RFC 3339 instant"))
    })
}

/// A contact's timeline as of its latest event: the windows and conversations open then, and
/// what each kind of send would do at that instant. Computed from the contact's fold state when
/// asked (never stored, so never stale); it depends only on the set of the contact's events
/// and the account's, whatever order they arrived in.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineSnapshot {
    pub waba_id: WabaId,
    pub phone_number_id: String,
    pub user_id: String,
    pub latest_event_at: Timestamp,
    pub state: ledger_core::Eligibility,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineView {
    pub waba_id: String,
    pub phone_number_id: String,
    pub user_id: String,
    /// Windows, open conversations and send previews as of the latest event.
    pub snapshot: TimelineSnapshot,
    /// The contact's events in event-time order.
    pub events: Vec<ledger_core::Event>,
    /// Journal entries of the contact in time order, reversals included.
    pub entries: Vec<EntryView>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct UsageRow {
    /// `conversation` or `message`.
    pub unit: String,
    pub category: String,
    pub market: String,
    pub pricing_type: String,
    pub count: i64,
}

/// One allowance claim a ledger granted free, with the usage rows it moves between if a merge
/// of partitions finds it is not among the account's first `limit` claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GrantRow {
    /// `kind/scope/month` of the allowance (scope: the WABA, or a phone number for R80).
    pub pool: String,
    pub limit: usize,
    /// Unix seconds of the claim; with `fact_id` (32 hex digits) its place in time order.
    pub at: i64,
    pub fact_id: String,
    pub unit: String,
    pub category: String,
    pub markets: Vec<(String, u64)>,
    pub free_pricing_type: String,
    pub billable_pricing_type: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct UsageView {
    pub waba_id: String,
    /// The month in the WABA's time zone.
    pub month: String,
    pub rows: Vec<UsageRow>,
    pub conversations: i64,
    pub messages: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReconcileReport {
    pub waba_id: String,
    pub within_tolerance: bool,
    pub messages: MessageReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<PeriodReport>,
    /// Meta's tier webhooks for the WABA (R55) against the ledger's accrual (R54).
    pub tiers: TierReport,
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub waba_id: Option<String>,
    pub phone_number_id: Option<String>,
    pub user_id: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub limit: Option<usize>,
}

pub const DEFAULT_ENTRY_LIMIT: usize = 1_000;
/// The most entries or dead letters one answer holds: a request for more is refused, not served
/// from memory sized by the caller (`limit=100000000` was taken as asked).
pub const MAX_ANSWER_ITEMS: usize = 10_000;

/// A caller's `limit`, or the default; above [`MAX_ANSWER_ITEMS`] (or 0) a bad request.
pub fn bounded_limit(limit: Option<usize>, default: usize) -> Result<usize, QueryError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=MAX_ANSWER_ITEMS).contains(&n) => Ok(n),
        Some(n) => Err(QueryError::BadRequest(format!("limit {n} is outside 1..={MAX_ANSWER_ITEMS}"))),
    }
}

/// The query side of one ledger.
#[derive(Clone)]
pub struct Queries {
    store: Arc<Store>,
    ledger: Arc<std::sync::OnceLock<Arc<RwLock<Ledger>>>>,
    pricing: Arc<Pricing>,
    /// The log, for answers as of an instant (replayed from it).
    log: Option<(Arc<dyn EventLog>, LedgerConfig)>,
}

impl std::fmt::Debug for Queries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queries").field("ready", &self.is_ready()).finish_non_exhaustive()
    }
}

impl Queries {
    /// Queries over `store`; eligibility answers once [`Queries::set_ledger`] is called.
    pub fn new(store: Arc<Store>, pricing: Arc<Pricing>) -> Queries {
        Queries { store, ledger: Arc::new(std::sync::OnceLock::new()), pricing, log: None }
    }

    /// Enables `as_of` answers, replayed from `log` with the projector's `config`.
    pub fn with_log(mut self, log: Arc<dyn EventLog>, config: LedgerConfig) -> Queries {
        self.log = Some((log, config));
        self
    }

    pub fn pricing(&self) -> &Arc<Pricing> {
        &self.pricing
    }

    /// The ledger replayed from the log up to `as_of` (everything when `None`).
    pub fn replay(&self, as_of: Option<Timestamp>) -> Result<Replay, QueryError> {
        let (log, config) = self.log.as_ref().ok_or_else(|| {
            QueryError::BadRequest("as_of needs the event log, which this process does not hold".into())
        })?;
        Replay::of_log(&**log, *config, self.pricing.clone(), as_of)
            .map_err(|e| QueryError::Store(StoreError::Value { family: "log", reason: e.to_string() }))
    }

    /// The WABA's invoice for a month in its time zone: from the `billing` aggregates, or as
    /// the ledger answered once it had projected every record received by `as_of` — from the
    /// store's `history`, or for a store written before it was kept, replayed from the log.
    pub fn invoice(
        &self,
        waba_id: &str,
        month: &str,
        as_of: Option<Timestamp>,
    ) -> Result<Invoice, QueryError> {
        let parsed = parse_month(month)?;
        let stored = match as_of {
            None => self.store.billing(waba_id, &parsed.to_string())?,
            Some(instant) if self.store.history_kept()? => {
                self.store.billing_as_of(waba_id, &parsed.to_string(), instant.0)?
            }
            Some(instant) => return self.invoice_replayed(waba_id, month, instant),
        };
        let lines = stored
            .into_iter()
            .map(|(line, count)| {
                let key = LineKey::decode(&line).map_err(|e| StoreError::Value {
                    family: ledger_store::BILLING,
                    reason: e.to_string(),
                })?;
                Ok((key, count))
            })
            .collect::<Result<Vec<_>, QueryError>>()?;
        Ok(self.invoice_of(waba_id, parsed, lines, as_of))
    }

    /// The invoice as of an instant, priced from a replay of the log's records received by
    /// then (what [`Queries::invoice`] answers from `history`).
    pub fn invoice_replayed(
        &self,
        waba_id: &str,
        month: &str,
        as_of: Timestamp,
    ) -> Result<Invoice, QueryError> {
        let month = parse_month(month)?;
        let lines = self.replay(Some(as_of))?.book.lines(waba_id, month);
        Ok(self.invoice_of(waba_id, month, lines, Some(as_of)))
    }

    fn invoice_of(
        &self,
        waba_id: &str,
        month: LocalMonth,
        lines: Vec<(LineKey, i64)>,
        as_of: Option<Timestamp>,
    ) -> Invoice {
        let (_, currency, _) = self.pricing.business_of(waba_id);
        let mut invoice = Invoice::from_lines(waba_id, month, lines, currency);
        invoice.as_of = as_of.map(|t| t.to_string());
        invoice
    }

    /// Eligibility as the ledger would have answered with the events received up to `as_of`,
    /// folded from the store without replaying the log: the account's own events and the
    /// contact's, each kept only if received by then; for an allowance a send would draw on
    /// (R13, R26, R80), every contact with a claim on it before `at` — found through the
    /// account's entry index, which keeps reversed postings too — folded alike. The cost is
    /// that of the contact and the allowance's month, never of the log.
    pub fn eligibility_as_of(
        &self,
        phone_number_id: &str,
        user_id: &str,
        at: Timestamp,
        waba_id: Option<&str>,
        as_of: Timestamp,
    ) -> Result<PricedEligibility, QueryError> {
        let (_, config) = self.log.as_ref().ok_or_else(|| {
            QueryError::BadRequest("as_of needs the event log, which this process does not hold".into())
        })?;
        let waba_id = self.waba_of(phone_number_id, waba_id)?;
        let contact = ContactKey::new(phone_number_id, user_id);
        let mut folded = AsOfFold { queries: self, ledger: Ledger::new(*config), as_of, scratch: Vec::new() };
        folded.account(&waba_id)?;
        folded.contact(&waba_id, &contact)?;
        let pools: Vec<AllowancePool> = {
            let answer = folded.ledger.eligibility(&waba_id, &contact, at);
            let mut pools: Vec<AllowancePool> =
                [&answer.free_form, &answer.marketing, &answer.utility, &answer.authentication]
                    .into_iter()
                    .filter_map(|preview| match &preview.charge {
                        Some(Charge::Allowance(pool)) => Some(pool.clone()),
                        _ => None,
                    })
                    .collect();
            pools.sort();
            pools.dedup();
            pools
        };
        let mut seen = std::collections::HashSet::from([contact.clone()]);
        let account = Scope::Account { waba_id: waba_id.to_string() };
        for pool in &pools {
            // A month is at most 31 days, and local months start at most 14 h from UTC's.
            let mut entries = EntryCursor::new(&account, at.0 - 32 * 86_400, at.0);
            loop {
                let page = self.store.entries_page(&mut entries, 1_024)?;
                if page.is_empty() {
                    break;
                }
                for claimant in page.iter().filter_map(|entry| claimant_of(entry, pool)) {
                    if seen.insert(claimant.clone()) {
                        folded.contact(&waba_id, &claimant)?;
                    }
                }
            }
        }
        let answer = folded.ledger.eligibility(&waba_id, &contact, at);
        Ok(self.pricing.price_eligibility(waba_id.as_str(), user_id, answer))
    }

    /// Usage as the ledger counted it once it had projected every record received by `as_of`:
    /// from the store's `history`, or for a store written before it was kept, replayed.
    pub fn usage_as_of(&self, waba_id: &str, month: &str, as_of: Timestamp) -> Result<UsageView, QueryError> {
        if !self.store.history_kept()? {
            return self.usage_replayed(waba_id, month, as_of);
        }
        let month = parse_month(month)?.to_string();
        let counters = self.store.usage_as_of(waba_id, &month, as_of.0)?;
        Ok(usage_view(waba_id, &month, counters))
    }

    /// Usage counted from a replay of the log's records received by `as_of`, as
    /// [`Queries::usage`] counts (what [`Queries::usage_as_of`] answers from `history`).
    pub fn usage_replayed(
        &self,
        waba_id: &str,
        month: &str,
        as_of: Timestamp,
    ) -> Result<UsageView, QueryError> {
        let month = parse_month(month)?;
        let replay = self.replay(Some(as_of))?;
        let pricer = Pricer::new(self.pricing.clone());
        let mut counts: BTreeMap<UsageCell, i64> = Default::default();
        for entry in &replay.journal {
            let context = entry.fact.context();
            if context.waba_id.as_str() != waba_id || context.local_month != month {
                continue;
            }
            let (unit, category, pricing_type) = entry.usage_columns();
            let sign = if entry.action == EntryAction::Post { 1 } else { -1 };
            for (market, recipients) in pricer.markets(entry) {
                let key = (unit.to_owned(), category.to_owned(), market, pricing_type.to_owned());
                *counts.entry(key).or_default() += sign * recipients as i64;
            }
        }
        Ok(UsageView::of_counts(waba_id, &month.to_string(), counts))
    }

    /// The WABA's entries standing after reversals, read from the store and decoded back to
    /// the core's own, in time order: those of `month` (in the account's time zone), or all, of
    /// the stored entries `keep` accepts (a reversal carries its posting's fact, so both or
    /// neither pass).
    fn account_entries(
        &self,
        waba_id: &str,
        month: Option<LocalMonth>,
        keep: impl Fn(&ledger_proto::v1::Entry) -> bool,
    ) -> Result<Vec<Entry>, QueryError> {
        // A local month starts and ends at most 14 h from UTC's.
        let (from, to) = match month {
            Some(m) => {
                let first = chrono::NaiveDate::from_ymd_opt(m.year, m.month, 1);
                let next = if m.month == 12 {
                    chrono::NaiveDate::from_ymd_opt(m.year + 1, 1, 1)
                } else {
                    chrono::NaiveDate::from_ymd_opt(m.year, m.month + 1, 1)
                };
                let utc = |d: Option<chrono::NaiveDate>| {
                    d.and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc().timestamp())
                };
                match (utc(first), utc(next)) {
                    (Some(first), Some(next)) => (first - 86_400, next + 86_400),
                    _ => (i64::MIN, i64::MAX),
                }
            }
            None => (i64::MIN, i64::MAX),
        };
        let mut cursor = EntryCursor::new(&Scope::Account { waba_id: waba_id.to_owned() }, from, to);
        let mut journal = Vec::new();
        loop {
            let page = self.store.entries_page(&mut cursor, 4_096)?;
            if page.is_empty() {
                break;
            }
            for stored in page.into_iter().filter(|stored| keep(stored)) {
                let entry = Entry::try_from(stored).map_err(|e| StoreError::Value {
                    family: ledger_store::ENTRIES,
                    reason: e.to_string(),
                })?;
                journal.push(entry);
            }
        }
        let mut live = live_entries(&journal);
        live.retain(|e| month.is_none_or(|m| e.fact.context().local_month == m));
        Ok(live)
    }

    /// Per-message reconciliation, and per-period against a saved analytics response when one
    /// is given; `within_tolerance` is false when a period row exceeds the tolerance or more
    /// messages disagree than `tolerance.count`.
    pub fn reconcile(
        &self,
        waba_id: &str,
        month: Option<&str>,
        analytics: Option<&str>,
        tolerance: Tolerance,
    ) -> Result<ReconcileReport, QueryError> {
        let month = month.map(parse_month).transpose()?;
        // Parsed first: a bad file is refused before the log is replayed, which happens once.
        let analytics =
            analytics.map(reconcile::parse_analytics).transpose().map_err(QueryError::BadRequest)?;
        let replay = self.replay(None)?;
        let portfolio = live_entries(&replay.journal);
        let updates: Vec<_> = replay
            .tier_updates
            .into_iter()
            .filter(|(waba, update)| waba == waba_id && month.is_none_or(|m| update.effective_month == m))
            .map(|(_, update)| update)
            .collect();
        let pricer = Pricer::new(self.pricing.clone());
        let tiers = reconcile::reconcile_tiers(waba_id, &updates, &portfolio, &pricer);
        let live: Vec<Entry> =
            portfolio.into_iter().filter(|e| e.fact.context().waba_id.as_str() == waba_id).collect();
        let in_month: Vec<Entry> = live
            .iter()
            .filter(|e| month.is_none_or(|m| e.fact.context().local_month == m))
            .cloned()
            .collect();
        let messages = reconcile::reconcile_messages(&in_month, &mut Pricer::new(self.pricing.clone()));
        let period = analytics.map(|(kind, points)| {
            reconcile::reconcile_period(
                kind,
                &points,
                &live,
                &mut Pricer::new(self.pricing.clone()),
                tolerance,
            )
        });
        let within_tolerance = period.as_ref().is_none_or(|p| p.differences == 0)
            && messages.differences.len() as i64 <= tolerance.count
            && tiers.differences == 0;
        Ok(ReconcileReport { waba_id: waba_id.to_owned(), within_tolerance, messages, period, tiers })
    }

    /// What each Click-to-WhatsApp source bought (R14, R25, R53).
    pub fn attribution(&self, waba_id: &str, month: Option<&str>) -> Result<Vec<AdSource>, QueryError> {
        let month = month.map(parse_month).transpose()?;
        // What attribution reads: entry point conversations and the messages that joined a
        // conversation or window; the rest of the month is not decoded.
        let live = self.account_entries(waba_id, month, |stored| {
            use ledger_proto::v1::entry::Fact as StoredFact;
            match &stored.fact {
                Some(StoredFact::ConversationOpened(c)) => c.category == "referral_conversion",
                Some(StoredFact::MessageBilled(m)) => m.conversation.is_some(),
                None => false,
            }
        })?;
        Ok(attribution::attribute(&live, &mut Pricer::new(self.pricing.clone())))
    }

    /// The allowance claims of the account's month this ledger granted free, as a partitioned
    /// deployment merges them ([`ledger_core::Ledger::free_grants`]).
    pub fn free_grants(&self, waba_id: &str, month: &str) -> Result<Vec<GrantRow>, QueryError> {
        let month = parse_month(month)?;
        self.load_pools(self.store.pools_in_month(month)?)?;
        let grants = {
            let ledger = self.ledger()?.read().unwrap_or_else(PoisonError::into_inner);
            // A grant whose contact is not in memory: its posting as the contact's state stored it.
            let mut failed = None;
            let mut stored = |waba_id: &WabaId, contact: &ContactKey, fact_id: u128| {
                let read =
                    self.store.contact_state(waba_id.as_str(), &contact.phone_number_id, &contact.user_id);
                match read {
                    Ok(state) => {
                        let posting = state?.journal.postings.into_iter().find(|p| p.fact.id() == fact_id)?;
                        Some(posting.entry())
                    }
                    Err(error) => {
                        failed = Some(error);
                        None
                    }
                }
            };
            let grants = ledger.free_grants(&WabaId::from(waba_id), month, &mut stored);
            if let Some(error) = failed {
                return Err(error.into());
            }
            grants
        };
        let pricer = Pricer::new(self.pricing.clone());
        let mut rows: Vec<GrantRow> = grants
            .into_iter()
            .map(|grant| {
                let (unit, category, free_pricing_type) = grant.posted.usage_columns();
                let pool = &grant.pool;
                GrantRow {
                    pool: format!("{}/{}/{}", pool.kind.as_str(), pool.scope, pool.month),
                    limit: grant.limit,
                    at: grant.at.0,
                    fact_id: format!("{:032x}", grant.fact_id),
                    unit: unit.to_owned(),
                    category: category.to_owned(),
                    markets: pricer.markets(&grant.posted),
                    free_pricing_type: free_pricing_type.to_owned(),
                    billable_pricing_type: grant.if_billable.usage_columns().2.to_owned(),
                }
            })
            .collect();
        // Pools are kept unordered: the answer lists them by name, each in grant order.
        rows.sort_by(|a, b| (&a.pool, a.at, &a.fact_id).cmp(&(&b.pool, b.at, &b.fact_id)));
        Ok(rows)
    }

    /// Brings allowance pools that are not in memory into it from their stored claims (read
    /// without holding the projector's lock). Only the fold changes a pool, and it loads a pool
    /// before it does, so a pool not in memory is as the store says.
    fn load_pools(&self, pools: Vec<ledger_core::AllowancePool>) -> Result<(), QueryError> {
        let ledger = self.ledger()?;
        let missing: Vec<_> = {
            let ledger = ledger.read().unwrap_or_else(PoisonError::into_inner);
            pools.into_iter().filter(|pool| !ledger.has_pool(pool)).collect()
        };
        for pool in missing {
            let claims = self.store.pool_claims(&pool)?;
            ledger.write().unwrap_or_else(PoisonError::into_inner).restore_pool(&pool, claims);
        }
        Ok(())
    }

    /// A contact's stored fold state, decoded.
    fn stored_contact(
        &self,
        waba_id: &WabaId,
        contact: &ContactKey,
    ) -> Result<Option<ledger_core::StoredContact>, QueryError> {
        let Some(state) =
            self.store.contact_state(waba_id.as_str(), &contact.phone_number_id, &contact.user_id)?
        else {
            return Ok(None);
        };
        let stored = state
            .to_stored()
            .map_err(|e| StoreError::Value { family: ledger_store::CONTACTS, reason: e.to_string() })?;
        Ok(Some(stored))
    }

    pub fn set_ledger(&self, ledger: Arc<RwLock<Ledger>>) {
        let _ = self.ledger.set(ledger);
    }

    /// Whether the account stage's state is loaded (contact answers need it); whether the
    /// stages keep up is the server's to say.
    pub fn is_ready(&self) -> bool {
        self.ledger.get().is_some()
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn ledger(&self) -> Result<&Arc<RwLock<Ledger>>, QueryError> {
        self.ledger.get().ok_or(QueryError::NotReady)
    }

    /// The WABA a contact question is about: the one given, or the phone number's.
    pub fn waba_of(&self, phone_number_id: &str, waba_id: Option<&str>) -> Result<WabaId, QueryError> {
        if let Some(waba_id) = waba_id {
            return Ok(WabaId::from(waba_id));
        }
        let ledger = self.ledger()?.read().unwrap_or_else(PoisonError::into_inner);
        ledger.waba_of_phone_number(phone_number_id).cloned().ok_or_else(|| {
            QueryError::NotFound(format!(
                "no events for business phone number {phone_number_id}; pass waba_id"
            ))
        })
    }

    /// What the contact may send at `at`, and what each kind of send would cost (R1–R4, R25).
    pub fn eligibility(
        &self,
        phone_number_id: &str,
        user_id: &str,
        at: Timestamp,
        waba_id: Option<&str>,
    ) -> Result<PricedEligibility, QueryError> {
        let waba_id = self.waba_of(phone_number_id, waba_id)?;
        let contact = ContactKey::new(phone_number_id, user_id);
        let (_, answer) = self
            .contact_answer(
                &waba_id,
                &contact,
                &|| self.stored_contact(&waba_id, &contact),
                |ledger, stored| Some((at, ledger.eligibility_of(&waba_id, &contact, stored, at))),
            )?
            .expect("an instant is given");
        Ok(self.pricing.price_eligibility(waba_id.as_str(), user_id, answer))
    }

    /// Answers a question about one contact from the projector's memory when the contact is
    /// there, else from its stored state (as `stored` reads it), read without holding the
    /// projector's lock; allowance pools nothing touched since the start are loaded and the
    /// question asked again.
    fn contact_answer(
        &self,
        waba_id: &WabaId,
        contact: &ContactKey,
        stored: &dyn Fn() -> Result<Option<ledger_core::StoredContact>, QueryError>,
        ask: impl Fn(&Ledger, Option<ledger_core::StoredContact>) -> Option<(Timestamp, ledger_core::Eligibility)>,
    ) -> Result<Option<(Timestamp, ledger_core::Eligibility)>, QueryError> {
        let ledger = self.ledger()?;
        let answer_once = || -> Result<_, QueryError> {
            {
                let ledger = ledger.read().unwrap_or_else(PoisonError::into_inner);
                if ledger.contact(waba_id, contact).is_some() {
                    return Ok(ask(&ledger, None));
                }
            }
            let stored = stored()?;
            Ok(ask(&ledger.read().unwrap_or_else(PoisonError::into_inner), stored))
        };
        let answer = answer_once()?;
        let unloaded = match &answer {
            Some((_, eligibility)) => {
                ledger.read().unwrap_or_else(PoisonError::into_inner).pools_not_loaded(eligibility)
            }
            None => Vec::new(),
        };
        if unloaded.is_empty() {
            return Ok(answer);
        }
        // The allowance use of a pool nothing touched since the start: load it, ask again.
        self.load_pools(unloaded)?;
        answer_once()
    }

    /// The contact's events as stored, in event-time order (then by id, as the log's order
    /// does not matter): from its fold state (`stored`, as [`Queries::stored_contact`] read it),
    /// or, for a store written before contact states were kept, from the `events` family.
    fn contact_events(
        &self,
        waba_id: &WabaId,
        contact: &ContactKey,
        stored: Option<ledger_core::StoredContact>,
    ) -> Result<Vec<Event>, QueryError> {
        let mut events = match stored {
            Some(stored) => stored.events,
            None => self.scope_events(&contact_scope(waba_id, contact))?,
        };
        events.sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
        Ok(events)
    }

    /// The events the `events` family holds for a scope (an account's own, or a contact's in
    /// a store written before contact states were kept), in event-time order.
    fn scope_events(&self, scope: &Scope) -> Result<Vec<Event>, QueryError> {
        let decoded: Result<Vec<Event>, _> =
            self.store.events(scope)?.iter().map(|raw| ledger_proto::decode_event(raw)).collect();
        Ok(decoded.map_err(|e| StoreError::Value { family: ledger_store::EVENTS, reason: e.to_string() })?)
    }

    pub fn timeline(
        &self,
        phone_number_id: &str,
        user_id: &str,
        waba_id: Option<&str>,
    ) -> Result<TimelineView, QueryError> {
        let waba_id = self.waba_of(phone_number_id, waba_id)?;
        let contact = ContactKey::new(phone_number_id, user_id);
        // Read once: the event list and (for a contact not in memory) the snapshot use it.
        let stored = self.stored_contact(&waba_id, &contact)?;
        let (latest_event_at, state) = self
            .contact_answer(&waba_id, &contact, &|| Ok(stored.clone()), |ledger, stored| {
                ledger.latest_eligibility_of(&waba_id, &contact, stored)
            })?
            .ok_or_else(|| {
                QueryError::NotFound(format!("no events for contact {phone_number_id}/{user_id}"))
            })?;
        let scope = contact_scope(&waba_id, &contact);
        let entries = self.store.entries(&scope, i64::MIN, i64::MAX, usize::MAX)?;
        Ok(TimelineView {
            waba_id: waba_id.to_string(),
            phone_number_id: phone_number_id.to_owned(),
            user_id: user_id.to_owned(),
            snapshot: TimelineSnapshot {
                waba_id: waba_id.clone(),
                phone_number_id: phone_number_id.to_owned(),
                user_id: user_id.to_owned(),
                latest_event_at,
                state,
            },
            events: self.contact_events(&waba_id, &contact, stored)?,
            entries: entries.iter().map(EntryView::from).collect(),
        })
    }

    /// Counts by unit × category × market × pricing type for one month in the WABA's time zone,
    /// reversals netted.
    pub fn usage(&self, waba_id: &str, month: &str) -> Result<UsageView, QueryError> {
        let month = parse_month(month)?.to_string();
        let counters = self.store.usage(waba_id, &month)?;
        Ok(usage_view(waba_id, &month, counters))
    }

    pub fn entries(&self, filter: &EntryFilter) -> Result<Vec<EntryView>, QueryError> {
        let scope = match (&filter.waba_id, &filter.phone_number_id, &filter.user_id) {
            (waba_id, Some(phone), Some(user)) => Scope::Contact {
                waba_id: self.waba_of(phone, waba_id.as_deref())?.to_string(),
                phone_number_id: phone.clone(),
                user_id: user.clone(),
            },
            (Some(waba_id), None, None) => Scope::Account { waba_id: waba_id.clone() },
            _ => {
                return Err(QueryError::BadRequest(
                    "name an account (waba_id) or a contact (phone_number_id and user_id)".into(),
                ))
            }
        };
        let from = filter.from.map_or(i64::MIN, |t| t.0);
        let to = filter.to.map_or(i64::MAX, |t| t.0);
        let limit = bounded_limit(filter.limit, DEFAULT_ENTRY_LIMIT)?;
        Ok(self.store.entries(&scope, from, to, limit)?.iter().map(EntryView::from).collect())
    }

    pub fn explain(&self, entry_id: &str) -> Result<ExplanationView, QueryError> {
        let id = u128::from_str_radix(entry_id, 16)
            .ok()
            .filter(|_| entry_id.len() == 32)
            .ok_or_else(|| QueryError::BadRequest(format!("entry id {entry_id:?} is not 32 hex digits")))?;
        let entry =
            self.store.entry(id)?.ok_or_else(|| QueryError::NotFound(format!("no entry {entry_id}")))?;
        Ok(ExplanationView::try_from(&entry)
            .map_err(|e| StoreError::Value { family: ledger_store::ENTRIES, reason: e.to_string() })?)
    }
}

/// A ledger folded from stored events received by an instant (as-of answers).
struct AsOfFold<'a> {
    queries: &'a Queries,
    ledger: Ledger,
    as_of: Timestamp,
    scratch: Vec<Entry>,
}

impl AsOfFold<'_> {
    /// Folds the account's own stored events received by `as_of`.
    fn account(&mut self, waba_id: &WabaId) -> Result<(), QueryError> {
        let events = self.queries.scope_events(&Scope::Account { waba_id: waba_id.to_string() })?;
        self.fold(events);
        Ok(())
    }

    /// Folds the contact's stored events received by `as_of`.
    fn contact(&mut self, waba_id: &WabaId, contact: &ContactKey) -> Result<(), QueryError> {
        let stored = self.queries.stored_contact(waba_id, contact)?;
        let events = self.queries.contact_events(waba_id, contact, stored)?;
        self.fold(events);
        Ok(())
    }

    fn fold(&mut self, events: Vec<Event>) {
        for event in events {
            if event.receive_time <= self.as_of {
                // Refused events were refused when projected, alike.
                let _ = self.ledger.apply(event, &mut self.scratch);
            }
        }
        self.scratch.clear();
    }
}

/// A usage row's key: unit, category, market, pricing type.
type UsageCell = (String, String, String, String);

/// The usage answer of stored counters (in key order, zero counts left out).
fn usage_view(waba_id: &str, month: &str, counters: Vec<(ledger_store::UsageKey, i64)>) -> UsageView {
    let rows = counters.into_iter().map(|(key, count)| UsageRow {
        unit: key.unit,
        category: key.category,
        market: key.market,
        pricing_type: key.pricing_type,
        count,
    });
    UsageView::of_rows(waba_id, month, rows)
}

fn contact_scope(waba_id: &WabaId, contact: &ContactKey) -> Scope {
    Scope::Contact {
        waba_id: waba_id.to_string(),
        phone_number_id: contact.phone_number_id.to_string(),
        user_id: contact.user_id.to_string(),
    }
}

/// The contact of a stored entry whose fact claims `pool`'s allowance (of any month).
fn claimant_of(entry: &ledger_proto::v1::Entry, pool: &AllowancePool) -> Option<ContactKey> {
    use ledger_proto::v1::entry::Fact as StoredFact;
    let claimed = match entry.fact.as_ref()? {
        StoredFact::ConversationOpened(c) => c.allowance.as_ref(),
        StoredFact::MessageBilled(m) => m.allowance.as_ref(),
    }?;
    // The month is left out: entries stored today carry today's time zone's month, which an
    // account's later settings may have moved; folding a contact too many costs only time.
    let same = claimed.kind == pool.kind.as_str() && *claimed.scope == *pool.scope;
    let contact = entry.context.as_ref()?.contact.as_ref()?;
    same.then(|| ContactKey::new(&contact.phone_number_id, &contact.user_id))
}

impl UsageView {
    /// Applies account-wide allowances (R13, R26, R80) to a sum of partitions' usage: each
    /// partition granted its own first `limit` claims, so the union of `grants` holds every
    /// claim that is truly free — the earliest `limit` by (instant, fact id) per allowance. Each
    /// other grant moves from its free row to the row it has when billable, in each of its
    /// markets.
    pub fn with_account_allowances(self, mut grants: Vec<GrantRow>) -> UsageView {
        grants.sort_by(|a, b| (&a.pool, a.at, &a.fact_id).cmp(&(&b.pool, b.at, &b.fact_id)));
        let mut moves: Vec<UsageRow> = Vec::new();
        for pool in grants.chunk_by(|a, b| a.pool == b.pool) {
            // The free prefix: claims in time order while their units fit (a group message
            // draws one per participant reached, R80).
            let limit = pool[0].limit as u64;
            let mut used = 0u64;
            let beyond = pool.iter().skip_while(|grant| {
                let units = grant.markets.iter().map(|(_, n)| n).sum::<u64>().max(1);
                used += units;
                used <= limit
            });
            for grant in beyond {
                for (market, recipients) in &grant.markets {
                    let row = |pricing_type: &str, count: i64| UsageRow {
                        unit: grant.unit.clone(),
                        category: grant.category.clone(),
                        market: market.clone(),
                        pricing_type: pricing_type.to_owned(),
                        count,
                    };
                    moves.push(row(&grant.free_pricing_type, -(*recipients as i64)));
                    moves.push(row(&grant.billable_pricing_type, *recipients as i64));
                }
            }
        }
        if moves.is_empty() {
            return self;
        }
        let (waba_id, month) = (self.waba_id.clone(), self.month.clone());
        let correction = UsageView {
            waba_id: waba_id.clone(),
            month: month.clone(),
            rows: moves,
            conversations: 0,
            messages: 0,
        };
        UsageView::sum(&waba_id, &month, vec![self, correction])
    }

    /// Rows with the same unit × category × market × pricing type added up.
    pub fn sum(waba_id: &str, month: &str, views: Vec<UsageView>) -> UsageView {
        let mut rows: BTreeMap<UsageCell, i64> = BTreeMap::new();
        for view in views {
            for row in view.rows {
                *rows.entry((row.unit, row.category, row.market, row.pricing_type)).or_default() += row.count;
            }
        }
        UsageView::of_counts(waba_id, month, rows)
    }

    /// The view of counts by (unit, category, market, pricing type), in that order, zero counts
    /// left out (a posting and its reversal).
    fn of_counts(waba_id: &str, month: &str, counts: BTreeMap<UsageCell, i64>) -> UsageView {
        let rows = counts.into_iter().filter(|(_, count)| *count != 0).map(
            |((unit, category, market, pricing_type), count)| UsageRow {
                unit,
                category,
                market,
                pricing_type,
                count,
            },
        );
        UsageView::of_rows(waba_id, month, rows)
    }

    /// The view of `rows` as given, with the conversation and message totals they add up to.
    pub fn of_rows(waba_id: &str, month: &str, rows: impl IntoIterator<Item = UsageRow>) -> UsageView {
        let mut view = UsageView {
            waba_id: waba_id.to_owned(),
            month: month.to_owned(),
            rows: Vec::new(),
            conversations: 0,
            messages: 0,
        };
        for row in rows {
            match row.unit.as_str() {
                "conversation" => view.conversations += row.count,
                _ => view.messages += row.count,
            }
            view.rows.push(row);
        }
        view
    }
}

#[cfg(test)]
mod account_allowances {
    use super::*;

    fn grant(pool: &str, limit: usize, at: i64, fact: u128, market: &str) -> GrantRow {
        GrantRow {
            pool: pool.to_owned(),
            limit,
            at,
            fact_id: format!("{fact:032x}"),
            unit: "conversation".into(),
            category: "service".into(),
            markets: vec![(market.to_owned(), 1)],
            free_pricing_type: "free_tier".into(),
            billable_pricing_type: "regular".into(),
        }
    }

    fn row(market: &str, pricing_type: &str, count: i64) -> UsageRow {
        UsageRow {
            unit: "conversation".into(),
            category: "service".into(),
            market: market.into(),
            pricing_type: pricing_type.into(),
            count,
        }
    }

    fn counts(view: &UsageView) -> Vec<(String, String, i64)> {
        view.rows.iter().map(|r| (r.market.clone(), r.pricing_type.clone(), r.count)).collect()
    }

    /// R26 across two partitions with an allowance of 2: each partition granted its own first two
    /// claims (4 free in the sum); the account's first two by time stay free, the others are
    /// billable in their own markets. A pool within its limit moves nothing.
    #[test]
    fn only_the_accounts_earliest_claims_stay_free() {
        let pool = "era2_service_conversations/waba/2024-03";
        let other = "era2_service_conversations/other-waba/2024-03";
        let partition_0 = [grant(pool, 2, 10, 7, "India"), grant(pool, 2, 50, 3, "Brazil")];
        let partition_1 = [grant(pool, 2, 20, 9, "India"), grant(pool, 2, 30, 1, "India")];
        let summed = UsageView::sum(
            "waba",
            "2024-03",
            vec![UsageView {
                waba_id: "waba".into(),
                month: "2024-03".into(),
                rows: vec![
                    row("Brazil", "free_tier", 1),
                    row("India", "free_tier", 3),
                    row("India", "regular", 5),
                ],
                conversations: 9,
                messages: 0,
            }],
        );
        let mut grants: Vec<GrantRow> = partition_1.iter().chain(&partition_0).cloned().collect();
        grants.push(grant(other, 2, 5, 1, "India"));
        let corrected = summed.with_account_allowances(grants);
        assert_eq!(
            counts(&corrected),
            vec![
                ("Brazil".into(), "regular".into(), 1),
                ("India".into(), "free_tier".into(), 2),
                ("India".into(), "regular".into(), 6),
            ]
        );
        assert_eq!(corrected.conversations, 9, "claims move between rows; none appear or vanish");
    }

    /// Equal instants are ordered by fact id, as the ledger's own allowance orders them.
    #[test]
    fn ties_in_time_go_to_the_smaller_fact_id() {
        let pool = "era1_conversations/waba/2022-05";
        let summed = UsageView::sum(
            "waba",
            "2022-05",
            vec![UsageView {
                waba_id: "waba".into(),
                month: "2022-05".into(),
                rows: vec![row("India", "free_tier", 1), row("Brazil", "free_tier", 1)],
                conversations: 2,
                messages: 0,
            }],
        );
        let grants = vec![grant(pool, 1, 10, 0x20, "India"), grant(pool, 1, 10, 0x1ff, "Brazil")];
        let corrected = summed.with_account_allowances(grants);
        assert_eq!(
            counts(&corrected),
            vec![("Brazil".into(), "regular".into(), 1), ("India".into(), "free_tier".into(), 1)]
        );
    }
}
