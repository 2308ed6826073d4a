//! Monthly allowances granted in time order across an account (R13, R26) or a phone number
//! (R80): the claims of a month, in (instant, fact id) order, are free while the units they
//! draw in that order stay within `limit`; from the first claim that does not fit on, every
//! claim is paid.
//!
//! A claim draws one unit, or one per group participant reached (R59, R80: "one-to-one and
//! group messages together"). A group message that crosses the limit is paid whole (Meta does
//! not say how it would split one; `docs/decisions.md`).
//!
//! Kept as two ordered maps so a late claim that lands inside the free part moves only the
//! claims it pushes across the boundary, and the answer never depends on arrival order. Each
//! claim names its owner, the contact whose fact it is: a claim moved across the boundary is
//! re-posted in that contact's journal.

use std::collections::BTreeMap;

use crate::event::{ContactKey, WabaId};
use crate::fact::FactId;
use crate::time::Timestamp;

pub(crate) type Claim = (Timestamp, FactId);

/// The contact whose fact a claim is (an account's contact: pools may span its numbers).
pub(crate) type Owner = (WabaId, ContactKey);

#[derive(Debug, Clone)]
struct Held {
    units: u64,
    owner: Owner,
}

#[derive(Debug, Clone)]
pub(crate) struct Allowance {
    limit: u64,
    /// The free prefix, with the units each claim draws.
    free: BTreeMap<Claim, Held>,
    /// Every claim after the free prefix.
    paid: BTreeMap<Claim, Held>,
    free_units: u64,
}

impl Allowance {
    pub fn new(limit: usize) -> Self {
        Allowance { limit: limit as u64, free: BTreeMap::new(), paid: BTreeMap::new(), free_units: 0 }
    }

    /// A pool holding `claims` (as a store kept them, in any order).
    pub fn of_claims(limit: usize, mut claims: Vec<crate::ledger::StoredClaim>) -> Self {
        claims.sort_unstable_by_key(|claim| (claim.at, claim.fact_id));
        let mut allowance = Allowance::new(limit);
        for claim in claims {
            // In time order nothing already granted moves.
            allowance.insert((claim.at, claim.fact_id), claim.units, &claim.owner);
        }
        allowance
    }

    /// Adds `owner`'s claim drawing `units`; returns the facts (with their owners) that moved
    /// from free to paid because of it (a claim that does not fit is simply paid). Appending
    /// in time order costs O(log n); a late claim moves only what it pushes past the limit.
    pub fn insert(&mut self, claim: Claim, units: u64, owner: &Owner) -> Vec<(FactId, Owner)> {
        let held = Held { units, owner: owner.clone() };
        // After the first paid claim: paid, whatever its size (the free part is a prefix).
        if self.paid.first_key_value().is_some_and(|(first, _)| claim > *first) {
            self.paid.insert(claim, held);
            return Vec::new();
        }
        // Otherwise it takes its place in the prefix, and whatever no longer fits, from the
        // end (it included), becomes paid.
        self.free.insert(claim, held);
        self.free_units += units;
        let mut moved = Vec::new();
        while self.free_units > self.limit {
            let (last, last_held) = self.free.pop_last().expect("units above zero mean a claim");
            self.free_units -= last_held.units;
            if last != claim {
                moved.push((last.1, last_held.owner.clone()));
            }
            self.paid.insert(last, last_held);
        }
        moved
    }

    /// Withdraws a claim; returns the facts (with their owners) that moved from paid to free
    /// because of it.
    pub fn remove(&mut self, claim: Claim) -> Vec<(FactId, Owner)> {
        if self.paid.remove(&claim).is_none() {
            match self.free.remove(&claim) {
                Some(held) => self.free_units -= held.units,
                None => return Vec::new(),
            }
        }
        let mut promoted = Vec::new();
        while let Some(entry) = self.paid.first_entry() {
            if self.free_units + entry.get().units > self.limit {
                break;
            }
            let (first, held) = entry.remove_entry();
            self.free_units += held.units;
            promoted.push((first.1, held.owner.clone()));
            self.free.insert(first, held);
        }
        promoted
    }

    /// The claims granted free, earliest first, with their owners.
    pub fn free(&self) -> impl Iterator<Item = (&Claim, &Owner)> {
        self.free.iter().map(|(claim, held)| (claim, &held.owner))
    }

    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    pub fn is_free(&self, claim: &Claim) -> bool {
        self.free.contains_key(claim)
    }

    /// Units drawn by claims before `at`: what a send at `at` would find used up.
    pub fn used_before(&self, at: Timestamp) -> u64 {
        let below =
            |map: &BTreeMap<Claim, Held>| map.range(..(at, 0)).map(|(_, held)| held.units).sum::<u64>();
        below(&self.free) + below(&self.paid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the order of inserts and removals, the free set is the longest prefix of
        /// the claims present, in time order, whose units fit in the limit (R13, R26, R80).
        #[test]
        fn free_set_is_the_earliest_claims_that_fit(
            claims in proptest::collection::vec((0i64..50, 0u128..8, 1u64..4), 0..40),
            removals in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
            limit in 1usize..8,
        ) {
            let mut allowance = Allowance::new(limit);
            let owner = owner();
            let mut present: BTreeMap<Claim, u64> = BTreeMap::new();
            for (t, id, units) in &claims {
                let claim = (Timestamp(*t), *id);
                if let std::collections::btree_map::Entry::Vacant(slot) = present.entry(claim) {
                    slot.insert(*units);
                    allowance.insert(claim, *units, &owner);
                }
            }
            for index in removals {
                if present.is_empty() { break; }
                let claim = *present.keys().nth(index.index(present.len())).expect("in range");
                present.remove(&claim);
                allowance.remove(claim);
            }
            let mut expected = BTreeSet::new();
            let mut used = 0;
            for (claim, units) in &present {
                if used + units > limit as u64 { break; }
                used += units;
                expected.insert(*claim);
            }
            let free: BTreeSet<Claim> = allowance.free().map(|(claim, _)| *claim).collect();
            prop_assert_eq!(free, expected);
            prop_assert_eq!(allowance.free.len() + allowance.paid.len(), present.len());
        }
    }

    fn owner() -> Owner {
        (WabaId::from("waba"), ContactKey { phone_number_id: "pn".into(), user_id: "user".into() })
    }

    fn ids(moved: Vec<(FactId, Owner)>) -> Vec<FactId> {
        moved.into_iter().map(|(id, _)| id).collect()
    }

    #[test]
    fn a_late_claim_inside_a_full_allowance_moves_exactly_one_single_claim() {
        let mut allowance = Allowance::new(3);
        let owner = owner();
        for t in [10, 20, 30, 40] {
            assert!(allowance.insert((Timestamp(t), t as u128), 1, &owner).is_empty());
        }
        // R80: a late delivery at t=5 takes a free unit; the last free claim (t=30) becomes paid.
        assert_eq!(ids(allowance.insert((Timestamp(5), 5), 1, &owner)), vec![30]);
        // A group message reaching two participants at t=1 pushes out two claims.
        assert_eq!(ids(allowance.insert((Timestamp(1), 1), 2, &owner)), vec![20, 10]);
        assert_eq!(allowance.used_before(Timestamp(100)), 7);
    }
}
