//! The append-only journal of ledger entries (ARCHITECTURE decision 3).
//!
//! Facts become entries once allowances are resolved. A fact that disappears, or whose content
//! or resolution changes, is reversed by a new entry that names it; nothing posted is edited.
//! Entry ids are deterministic: the same log in the same order gives the same ids, and the
//! entries left after netting reversals depend only on the set of events.

use std::sync::Arc;

use serde::Serialize;

use crate::category::PricingType;
use crate::fact::{Charge, Fact, FactId, FreeReason};
use crate::id::{Id128, IdHasher};

/// Whether an entry posts a fact or reverses an earlier posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryAction {
    Post,
    Reverse,
}

/// The final billing verdict of a fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Resolution {
    pub billable: bool,
    pub free_reason: Option<FreeReason>,
}

impl Resolution {
    /// `within_allowance` answers for facts that claim an allowance.
    pub fn of(charge: &Charge, within_allowance: bool) -> Resolution {
        match charge {
            Charge::Billable => Resolution { billable: true, free_reason: None },
            Charge::Free(reason) => Resolution { billable: false, free_reason: Some(*reason) },
            Charge::Allowance(_) if within_allowance => {
                Resolution { billable: false, free_reason: Some(FreeReason::FreeTier) }
            }
            Charge::Allowance(_) => Resolution { billable: true, free_reason: None },
        }
    }

    /// The pricing type as Meta's webhooks and analytics would name it (R52, §5).
    pub fn pricing_type(self, fact: &Fact) -> Option<PricingType> {
        let conversation = matches!(fact, Fact::ConversationOpened(_));
        if !conversation && fact.is_conversation_based() {
            return None;
        }
        let group = matches!(fact, Fact::MessageBilled(m) if m.category.is_group());
        Some(match self.free_reason {
            None => PricingType::Regular,
            // R59: group messages free inside the group's window.
            Some(FreeReason::CustomerServiceWindow | FreeReason::NonTemplate) if group => {
                PricingType::FreeGroupCustomerService
            }
            Some(FreeReason::EntryPoint) => PricingType::FreeEntryPoint,
            Some(FreeReason::FreeTier) if conversation => PricingType::FreeTier,
            Some(
                FreeReason::FreeTier
                | FreeReason::FreeService
                | FreeReason::CustomerServiceWindow
                | FreeReason::NonTemplate
                | FreeReason::ProviderPolicy
                | FreeReason::PerConversation,
            ) => PricingType::FreeCustomerService,
        })
    }
}

/// One journal line: a posting of a fact with its verdict, or the reversal of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub id: Id128,
    pub action: EntryAction,
    /// The entry this one reverses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverses: Option<Id128>,
    pub billable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_reason: Option<FreeReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_type: Option<PricingType>,
    #[serde(flatten)]
    pub fact: Arc<Fact>,
}

impl Entry {
    fn new(
        id: Id128,
        action: EntryAction,
        reverses: Option<Id128>,
        resolution: Resolution,
        fact: Arc<Fact>,
    ) -> Entry {
        Entry {
            id,
            action,
            reverses,
            billable: resolution.billable,
            free_reason: resolution.free_reason,
            pricing_type: resolution.pricing_type(&fact),
            fact,
        }
    }

    pub fn resolution(&self) -> Resolution {
        Resolution { billable: self.billable, free_reason: self.free_reason }
    }

    /// The same posting with another verdict (and the pricing type that follows from it).
    pub fn with_resolution(&self, resolution: Resolution) -> Entry {
        Entry::new(self.id, self.action, self.reverses, resolution, self.fact.clone())
    }

    /// The entry's usage columns: unit (`conversation` or `message`), category and pricing type.
    /// Messages inside a conversation are priced with it: `within_conversation`, no type of their
    /// own.
    pub fn usage_columns(&self) -> (&'static str, &'static str, &'static str) {
        let (unit, category) = match &*self.fact {
            Fact::ConversationOpened(c) => ("conversation", c.category.as_str()),
            Fact::MessageBilled(m) => ("message", m.category.as_str()),
        };
        (unit, category, self.pricing_type.map_or("within_conversation", |p| p.as_str()))
    }
}

/// A fact's standing posting as a contact's state stores it. The fact is the one posted: a
/// contact loaded after its account's context changed (a new time zone, a re-categorized
/// template) must still reverse what was posted before, not what its events now fold to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPosting {
    pub entry_id: Id128,
    pub resolution: Resolution,
    pub fact: Arc<Fact>,
}

impl StoredPosting {
    /// The posting as a journal entry.
    pub fn entry(&self) -> Entry {
        Entry::new(self.entry_id, EntryAction::Post, None, self.resolution, Arc::clone(&self.fact))
    }

    /// The posting an entry makes (a stored posting is read back as the entry it was).
    pub fn of(entry: &Entry) -> StoredPosting {
        StoredPosting { entry_id: entry.id, resolution: entry.resolution(), fact: Arc::clone(&entry.fact) }
    }
}

/// A contact's journal as stored: its standing postings in the order the contact concluded
/// its facts, and how often each fact was reversed (the generation its next posting's id
/// derives from), sorted by fact id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredJournal {
    pub postings: Vec<StoredPosting>,
    pub reversals: Vec<(FactId, u32)>,
}

#[derive(Debug, Clone)]
struct Posted {
    entry_id: Id128,
    resolution: Resolution,
    fact: Arc<Fact>,
}

#[derive(Debug, Default)]
pub(crate) struct Journal {
    live: foldhash::HashMap<FactId, Posted>,
    /// How often a fact was reversed: its next posting's generation, so ids never repeat.
    reversed: foldhash::HashMap<FactId, u32>,
}

impl Journal {
    /// Posts a fact. Its entry id derives from the fact's id and how many times the fact was
    /// posted before: the same log in the same order always yields the same ids.
    pub fn post(&mut self, fact_id: FactId, fact: Arc<Fact>, resolution: Resolution, out: &mut Vec<Entry>) {
        let generation = self.reversed.get(&fact_id).copied().unwrap_or(0);
        let entry_id =
            Id128(IdHasher::new("ledger.entry.v2").u128(fact_id).u64(u64::from(generation)).finish());
        out.push(Entry::new(entry_id, EntryAction::Post, None, resolution, fact.clone()));
        let previous = self.live.insert(fact_id, Posted { entry_id, resolution, fact });
        debug_assert!(previous.is_none(), "a fact is posted at most once at a time");
    }

    pub fn reverse(&mut self, fact_id: FactId, out: &mut Vec<Entry>) {
        let Some(posted) = self.live.remove(&fact_id) else {
            debug_assert!(false, "reversing a fact that is not live");
            return;
        };
        *self.reversed.entry(fact_id).or_default() += 1;
        let id = Id128(IdHasher::new("ledger.reversal.v1").u128(posted.entry_id.0).finish());
        out.push(Entry::new(id, EntryAction::Reverse, Some(posted.entry_id), posted.resolution, posted.fact));
    }

    /// The standing posting of a fact, as an entry.
    pub fn live_entry(&self, fact_id: FactId) -> Option<Entry> {
        let p = self.live.get(&fact_id)?;
        Some(Entry::new(p.entry_id, EntryAction::Post, None, p.resolution, p.fact.clone()))
    }

    pub fn live(&self, fact_id: FactId) -> Option<(&Arc<Fact>, Resolution)> {
        self.live.get(&fact_id).map(|p| (&p.fact, p.resolution))
    }

    /// The journal as a contact's stored state keeps it, postings in the order of `facts`
    /// (the contact's conclusions, every one of them posted).
    pub fn stored(&self, facts: &[(FactId, Arc<Fact>)]) -> StoredJournal {
        let postings = facts
            .iter()
            .filter_map(|(fact_id, _)| self.live.get(fact_id))
            .map(|p| StoredPosting {
                entry_id: p.entry_id,
                resolution: p.resolution,
                fact: Arc::clone(&p.fact),
            })
            .collect();
        let mut reversals: Vec<(FactId, u32)> = self.reversed.iter().map(|(id, n)| (*id, *n)).collect();
        reversals.sort_unstable();
        StoredJournal { postings, reversals }
    }

    /// The journal a stored state describes.
    pub fn restore(stored: &StoredJournal) -> Journal {
        let live = stored
            .postings
            .iter()
            .map(|p| {
                let posted =
                    Posted { entry_id: p.entry_id, resolution: p.resolution, fact: Arc::clone(&p.fact) };
                (p.fact.id(), posted)
            })
            .collect();
        Journal { live, reversed: stored.reversals.iter().copied().collect() }
    }

    /// The entries standing after netting reversals, in no particular order.
    pub fn live_entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.live
            .values()
            .map(|p| Entry::new(p.entry_id, EntryAction::Post, None, p.resolution, p.fact.clone()))
    }
}
