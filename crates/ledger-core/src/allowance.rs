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
//! claims it pushes across the boundary, and the answer never depends on arrival order.

use std::collections::BTreeMap;

use crate::fact::FactId;
use crate::time::Timestamp;

pub(crate) type Claim = (Timestamp, FactId);

#[derive(Debug, Clone)]
pub(crate) struct Allowance {
    limit: u64,
    /// The free prefix, with the units each claim draws.
    free: BTreeMap<Claim, u64>,
    /// Every claim after the free prefix.
    paid: BTreeMap<Claim, u64>,
    free_units: u64,
}

impl Allowance {
    pub fn new(limit: usize) -> Self {
        Allowance { limit: limit as u64, free: BTreeMap::new(), paid: BTreeMap::new(), free_units: 0 }
    }

    /// Adds a claim drawing `units`; returns the facts that moved from free to paid because of
    /// it (a claim that does not fit is simply paid). Appending in time order costs
    /// O(log n); a late claim moves only what it pushes past the limit.
    pub fn insert(&mut self, claim: Claim, units: u64) -> Vec<FactId> {
        // After the first paid claim: paid, whatever its size (the free part is a prefix).
        if self.paid.first_key_value().is_some_and(|(first, _)| claim > *first) {
            self.paid.insert(claim, units);
            return Vec::new();
        }
        // Otherwise it takes its place in the prefix, and whatever no longer fits, from the
        // end (it included), becomes paid.
        self.free.insert(claim, units);
        self.free_units += units;
        let mut moved = Vec::new();
        while self.free_units > self.limit {
            let (last, last_units) = self.free.pop_last().expect("units above zero mean a claim");
            self.free_units -= last_units;
            self.paid.insert(last, last_units);
            if last != claim {
                moved.push(last.1);
            }
        }
        moved
    }

    /// Withdraws a claim; returns the facts that moved from paid to free because of it.
    pub fn remove(&mut self, claim: Claim) -> Vec<FactId> {
        if self.paid.remove(&claim).is_none() {
            match self.free.remove(&claim) {
                Some(units) => self.free_units -= units,
                None => return Vec::new(),
            }
        }
        let mut promoted = Vec::new();
        while let Some(entry) = self.paid.first_entry() {
            if self.free_units + *entry.get() > self.limit {
                break;
            }
            let (first, units) = entry.remove_entry();
            self.free_units += units;
            self.free.insert(first, units);
            promoted.push(first.1);
        }
        promoted
    }

    /// The claims granted free, earliest first.
    pub fn free(&self) -> impl Iterator<Item = &Claim> {
        self.free.keys()
    }

    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    pub fn is_free(&self, claim: &Claim) -> bool {
        self.free.contains_key(claim)
    }

    /// Units drawn by claims before `at`: what a send at `at` would find used up.
    pub fn used_before(&self, at: Timestamp) -> u64 {
        let below = |map: &BTreeMap<Claim, u64>| map.range(..(at, 0)).map(|(_, units)| units).sum::<u64>();
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
            let mut present: BTreeMap<Claim, u64> = BTreeMap::new();
            for (t, id, units) in &claims {
                let claim = (Timestamp(*t), *id);
                if let std::collections::btree_map::Entry::Vacant(slot) = present.entry(claim) {
                    slot.insert(*units);
                    allowance.insert(claim, *units);
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
            let free: BTreeSet<Claim> = allowance.free().copied().collect();
            prop_assert_eq!(free, expected);
            prop_assert_eq!(allowance.free.len() + allowance.paid.len(), present.len());
        }
    }

    #[test]
    fn a_late_claim_inside_a_full_allowance_moves_exactly_one_single_claim() {
        let mut allowance = Allowance::new(3);
        for t in [10, 20, 30, 40] {
            assert!(allowance.insert((Timestamp(t), t as u128), 1).is_empty());
        }
        // R80: a late delivery at t=5 takes a free unit; the last free claim (t=30) becomes paid.
        assert_eq!(allowance.insert((Timestamp(5), 5), 1), vec![30]);
        // A group message reaching two participants at t=1 pushes out two claims.
        assert_eq!(allowance.insert((Timestamp(1), 1), 2), vec![20, 10]);
        assert_eq!(allowance.used_before(Timestamp(100)), 7);
    }
}
