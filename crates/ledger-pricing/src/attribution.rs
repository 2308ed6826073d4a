//! What Click-to-WhatsApp ads bought: per `source_id` (and `ctwa_clid`), conversations and free
//! entry point windows opened, business messages delivered free inside them, and the charges
//! those messages avoided at the card's rates (R14, R25, R53).
//!
//! Avoided charges price each free template at its own category's rate on the card in force;
//! free-form messages avoid nothing under per-message pricing, and a utility template that would
//! have fallen inside a customer service window is still counted, so the figure is an upper
//! bound. Under conversation-based pricing the window itself is what was free: it is priced as
//! one conversation of the category of the first template it absorbed (marketing when none).

use std::collections::BTreeMap;

use ledger_core::fact::{Fact, MessageBilled};
use ledger_core::{ConversationCategory, Entry, EntryAction, FreeReason, MessageClass, PricingModel};
use serde::Serialize;

use crate::money::Money;
use crate::pricer::Pricer;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AdSource {
    pub source_id: String,
    /// Click ids seen for the source (absent for WhatsApp Status placements, E9).
    pub ctwa_clids: Vec<String>,
    /// Entry point conversations (eras 1–3) or windows (eras 4–5) opened.
    pub windows_opened: u64,
    pub free_messages: u64,
    pub free_templates: u64,
    pub avoided: Money,
    pub currency: String,
    /// Templates whose market the card does not price (left out of `avoided`).
    pub unpriced: u64,
}

/// Attribution over the live entries of one account.
pub fn attribute(live: &[Entry], pricer: &mut Pricer) -> Vec<AdSource> {
    let live: Vec<&Entry> = live.iter().filter(|e| e.action == EntryAction::Post).collect();
    // Window (its opening message) → source.
    let mut window_source: BTreeMap<String, String> = BTreeMap::new();
    let mut sources: BTreeMap<String, AdSource> = BTreeMap::new();
    for entry in &live {
        let Fact::ConversationOpened(opened) = &*entry.fact else { continue };
        if opened.category != ConversationCategory::ReferralConversion {
            continue;
        }
        let reference = opened.entry_point.as_ref();
        let source_id =
            reference.and_then(|r| r.source_id.clone()).unwrap_or_else(|| "(no source id)".into());
        let source = sources
            .entry(source_id.clone())
            .or_insert_with(|| AdSource { source_id: source_id.clone(), ..AdSource::default() });
        source.windows_opened += 1;
        if let Some(clid) = reference.and_then(|r| r.ctwa_clid.clone()) {
            if !source.ctwa_clids.contains(&clid) {
                source.ctwa_clids.push(clid);
            }
        }
        window_source.insert(opened.opened_by.to_string(), source_id);
        // CBP: the free conversation is what the ad bought.
        if opened.era != ledger_core::Era::PerMessage && opened.era != ledger_core::Era::PaidService {
            let category = first_template_category(&live, opened.opened_by.as_str()).unwrap_or("marketing");
            match pricer.list_rate(&entry.fact, category) {
                Some((rate, currency)) => {
                    source.avoided = source.avoided.checked_add(rate).unwrap_or(source.avoided);
                    source.currency = currency;
                }
                None => source.unpriced += 1,
            }
        }
    }
    for entry in &live {
        let Fact::MessageBilled(message) = &*entry.fact else { continue };
        if entry.free_reason != Some(FreeReason::EntryPoint) {
            continue;
        }
        let Some(source_id) = message.conversation.as_ref().and_then(|c| window_source.get(c.as_str()))
        else {
            continue;
        };
        let source = sources.get_mut(source_id).expect("every window has its source");
        source.free_messages += 1;
        let Some(MessageClass::Template(category)) = message.classification.class else { continue };
        source.free_templates += 1;
        if message.pricing_model == PricingModel::Pmp {
            match pricer.list_rate(&entry.fact, category.as_str()) {
                Some((rate, currency)) => {
                    source.avoided = source.avoided.checked_add(rate).unwrap_or(source.avoided);
                    source.currency = currency;
                }
                None => source.unpriced += 1,
            }
        }
    }
    sources.into_values().collect()
}

fn first_template_category<'a>(live: &[&'a Entry], window: &str) -> Option<&'a str> {
    live.iter()
        .filter_map(|e| match &*e.fact {
            Fact::MessageBilled(m @ MessageBilled { conversation: Some(c), .. }) if c.as_str() == window => {
                Some(m)
            }
            _ => None,
        })
        .min_by_key(|m| m.delivered_at)
        .and_then(|m| match m.classification.class {
            Some(MessageClass::Template(category)) => Some(category.as_str()),
            _ => None,
        })
}
