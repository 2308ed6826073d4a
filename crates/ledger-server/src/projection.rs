//! Pricing as the projector's hook (ARCHITECTURE decision 6): the projector counts, pricing
//! decides markets (R5) and money. The binary injects it into the stages.

use std::sync::Arc;

use ledger_core::Entry;
use ledger_pricing::{Pricer, Pricing, StoredTiers};
use ledger_projector::{BillingLine, EntryPricing, ProjectorError};
use ledger_store::{Store, StoreError};

/// Pricing as the projector's hook: markets for usage counters, priced lines for `billing`.
#[derive(Debug)]
pub struct PricedProjection {
    pricer: Pricer,
}

impl EntryPricing for PricedProjection {
    fn markets(&self, entry: &Entry) -> Vec<(String, u64)> {
        self.pricer.markets(entry)
    }

    fn price(&mut self, entry: &Entry) -> Vec<BillingLine> {
        let lines = self.pricer.price(entry).into_iter();
        lines
            .map(|priced| BillingLine {
                waba_id: priced.waba_id,
                month: priced.month.to_string(),
                line: priced.line.encode(),
                quantity: priced.quantity,
            })
            .collect()
    }

    fn take_state_changes(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.pricer.take_tier_changes()
    }

    fn restore(&mut self, store: Arc<Store>) -> Result<(), ProjectorError> {
        let accruals = store.pricing_states(ledger_pricing::ACCRUAL_KEY_PREFIX)?;
        self.pricer
            .keep_tiers_in(Box::new(StoreTiers(store)), accruals)
            .map_err(|e| StoreError::Value { family: ledger_store::ACCOUNTS, reason: e.to_string() }.into())
    }
}

/// Pricing's tier positions in the store, for reversals of postings no longer in memory.
struct StoreTiers(Arc<Store>);

impl StoredTiers for StoreTiers {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.0.pricing_state(key) {
            Ok(value) => value,
            Err(error) => {
                tracing::error!(%error, "reading a stored volume tier position");
                None
            }
        }
    }
}

pub fn projection_pricing(pricing: Arc<Pricing>) -> Box<dyn EntryPricing> {
    let mut pricer = Pricer::new(pricing);
    // A store that keeps pricing's state from its first record wants every change.
    pricer.track_tier_changes();
    Box::new(PricedProjection { pricer })
}

/// A fresh projection pricing per partition, for Kafka mode's group members (tier accruals are
/// rebuilt per partition like its fold state).
pub fn partition_pricing(pricing: Arc<Pricing>) -> ledger_projector::PricingFactory {
    Box::new(move || projection_pricing(pricing.clone()))
}
