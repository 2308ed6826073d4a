//! Answers to the questions the API and `ledger query` ask, over the store (timelines, usage,
//! entries) and the projector's in-memory ledger (eligibility, which needs account-wide
//! allowance state).

use std::sync::{Arc, PoisonError, RwLock};

use ledger_core::{ContactKey, Eligibility, Ledger, LocalMonth, Timestamp, WabaId};
use ledger_store::{Scope, Store, StoreError};
use serde::Serialize;

use crate::views::{EntryView, ExplanationView};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the ledger is still loading its state")]
    NotReady,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An instant given as Unix seconds or RFC 3339.
pub fn parse_instant(text: &str) -> Result<Timestamp, QueryError> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(Timestamp(seconds));
    }
    chrono::DateTime::parse_from_rfc3339(text).map(|t| Timestamp(t.timestamp())).map_err(|_| {
        QueryError::BadRequest(format!("{text:?} is neither Unix seconds nor an RFC 3339 instant"))
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineView {
    pub waba_id: String,
    pub phone_number_id: String,
    pub user_id: String,
    /// Windows, open conversations and send previews as of the latest event.
    pub snapshot: serde_json::Value,
    /// The contact's events in event-time order.
    pub events: Vec<ledger_core::Event>,
    /// Journal entries of the contact in time order, reversals included.
    pub entries: Vec<EntryView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UsageRow {
    /// `conversation` or `message`.
    pub unit: String,
    pub category: String,
    pub market: String,
    pub pricing_type: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UsageView {
    pub waba_id: String,
    /// The month in the WABA's time zone.
    pub month: String,
    pub rows: Vec<UsageRow>,
    pub conversations: i64,
    pub messages: i64,
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

/// The query side of one ledger.
#[derive(Clone)]
pub struct Queries {
    store: Arc<Store>,
    ledger: Arc<std::sync::OnceLock<Arc<RwLock<Ledger>>>>,
}

impl std::fmt::Debug for Queries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queries").field("ready", &self.is_ready()).finish_non_exhaustive()
    }
}

impl Queries {
    /// Queries over `store`; eligibility answers once [`Queries::set_ledger`] is called.
    pub fn new(store: Arc<Store>) -> Queries {
        Queries { store, ledger: Arc::new(std::sync::OnceLock::new()) }
    }

    pub fn set_ledger(&self, ledger: Arc<RwLock<Ledger>>) {
        let _ = self.ledger.set(ledger);
    }

    pub fn is_ready(&self) -> bool {
        self.ledger.get().is_some()
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn ledger(&self) -> Result<&Arc<RwLock<Ledger>>, QueryError> {
        self.ledger.get().ok_or(QueryError::NotReady)
    }

    fn waba_of(&self, phone_number_id: &str, waba_id: Option<&str>) -> Result<WabaId, QueryError> {
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
    ) -> Result<Eligibility, QueryError> {
        let waba_id = self.waba_of(phone_number_id, waba_id)?;
        let contact = ContactKey::new(phone_number_id, user_id);
        let ledger = self.ledger()?.read().unwrap_or_else(PoisonError::into_inner);
        Ok(ledger.eligibility(&waba_id, &contact, at))
    }

    pub fn timeline(
        &self,
        phone_number_id: &str,
        user_id: &str,
        waba_id: Option<&str>,
    ) -> Result<TimelineView, QueryError> {
        let waba_id = self.waba_of(phone_number_id, waba_id)?;
        let snapshot = self.store.timeline(waba_id.as_str(), phone_number_id, user_id)?.ok_or_else(|| {
            QueryError::NotFound(format!("no events for contact {phone_number_id}/{user_id}"))
        })?;
        let snapshot = serde_json::from_slice(&snapshot)
            .map_err(|e| StoreError::Value { family: ledger_store::TIMELINES, reason: e.to_string() })?;
        let scope = Scope::Contact {
            waba_id: waba_id.to_string(),
            phone_number_id: phone_number_id.to_owned(),
            user_id: user_id.to_owned(),
        };
        let events = self
            .store
            .events(&scope)?
            .iter()
            .map(|raw| ledger_proto::decode_event(raw))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Value { family: ledger_store::EVENTS, reason: e.to_string() })?;
        let entries = self.store.entries(&scope, i64::MIN, i64::MAX, usize::MAX)?;
        Ok(TimelineView {
            waba_id: waba_id.to_string(),
            phone_number_id: phone_number_id.to_owned(),
            user_id: user_id.to_owned(),
            snapshot,
            events,
            entries: entries.iter().map(EntryView::from).collect(),
        })
    }

    /// Counts by unit × category × market × pricing type for one month in the WABA's time zone,
    /// reversals netted.
    pub fn usage(&self, waba_id: &str, month: &str) -> Result<UsageView, QueryError> {
        let month: LocalMonth =
            month.parse().map_err(|_| QueryError::BadRequest(format!("month {month:?} is not YYYY-MM")))?;
        let month = month.to_string();
        let mut view = UsageView {
            waba_id: waba_id.to_owned(),
            month: month.clone(),
            rows: Vec::new(),
            conversations: 0,
            messages: 0,
        };
        for (key, count) in self.store.usage(waba_id, &month)? {
            match key.unit.as_str() {
                "conversation" => view.conversations += count,
                _ => view.messages += count,
            }
            view.rows.push(UsageRow {
                unit: key.unit,
                category: key.category,
                market: key.market,
                pricing_type: key.pricing_type,
                count,
            });
        }
        Ok(view)
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
        let limit = filter.limit.unwrap_or(DEFAULT_ENTRY_LIMIT);
        Ok(self.store.entries(&scope, from, to, limit)?.iter().map(EntryView::from).collect())
    }

    pub fn explain(&self, entry_id: &str) -> Result<ExplanationView, QueryError> {
        let id = u128::from_str_radix(entry_id, 16)
            .ok()
            .filter(|_| entry_id.len() == 32)
            .ok_or_else(|| QueryError::BadRequest(format!("entry id {entry_id:?} is not 32 hex digits")))?;
        let entry =
            self.store.entry(id)?.ok_or_else(|| QueryError::NotFound(format!("no entry {entry_id}")))?;
        Ok(ExplanationView::from(&entry))
    }
}
