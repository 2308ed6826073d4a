//! Monthly allowances granted in time order across an account (R13, R26) or a phone number
//! (R80): the first `limit` claims of a month, by (instant, fact id), are free.
//!
//! Kept as two ordered sets so a late claim that lands inside the free part moves exactly one
//! claim across the boundary, in O(log n), and the answer never depends on arrival order.

use std::collections::BTreeSet;

use crate::fact::FactId;
use crate::time::Timestamp;

pub(crate) type Claim = (Timestamp, FactId);

#[derive(Debug, Clone)]
pub(crate) struct Allowance {
    limit: usize,
    free: BTreeSet<Claim>,
    paid: BTreeSet<Claim>,
}

impl Allowance {
    pub fn new(limit: usize) -> Self {
        Allowance { limit, free: BTreeSet::new(), paid: BTreeSet::new() }
    }

    /// Adds a claim; returns the fact that moved from free to paid because of it, if any.
    pub fn insert(&mut self, claim: Claim) -> Option<FactId> {
        if self.free.len() < self.limit {
            debug_assert!(self.paid.is_empty());
            self.free.insert(claim);
            return None;
        }
        match self.free.last().copied() {
            Some(last_free) if claim < last_free => {
                self.free.remove(&last_free);
                self.free.insert(claim);
                self.paid.insert(last_free);
                Some(last_free.1)
            }
            _ => {
                self.paid.insert(claim);
                None
            }
        }
    }

    /// Withdraws a claim; returns the fact that moved from paid to free because of it, if any.
    pub fn remove(&mut self, claim: Claim) -> Option<FactId> {
        if self.paid.remove(&claim) || !self.free.remove(&claim) {
            return None;
        }
        let promoted = self.paid.pop_first()?;
        self.free.insert(promoted);
        Some(promoted.1)
    }

    /// The claims granted free, earliest first.
    pub fn free(&self) -> impl Iterator<Item = &Claim> {
        self.free.iter()
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn is_free(&self, claim: &Claim) -> bool {
        self.free.contains(claim)
    }

    /// Claims made before `at`: what a send at `at` would find used up.
    pub fn used_before(&self, at: Timestamp) -> usize {
        let below = |set: &BTreeSet<Claim>| set.range(..(at, 0)).count();
        below(&self.free) + below(&self.paid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the order of inserts and removals, the free set is the `limit` smallest
        /// claims present.
        #[test]
        fn free_set_is_the_earliest_claims(
            claims in proptest::collection::vec((0i64..50, 0u128..8), 0..40),
            removals in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
            limit in 1usize..6,
        ) {
            let mut allowance = Allowance::new(limit);
            let mut present = BTreeSet::new();
            for (t, id) in &claims {
                let claim = (Timestamp(*t), *id);
                if present.insert(claim) {
                    allowance.insert(claim);
                }
            }
            for index in removals {
                if present.is_empty() { break; }
                let claim = *present.iter().nth(index.index(present.len())).expect("in range");
                present.remove(&claim);
                allowance.remove(claim);
            }
            let expected: BTreeSet<Claim> = present.iter().copied().take(limit).collect();
            prop_assert_eq!(&allowance.free, &expected);
            prop_assert_eq!(allowance.free.len() + allowance.paid.len(), present.len());
        }
    }
}
