//! `ledger_core::Entry` → `ledger.v1.Entry`, the form the projector publishes.

use ledger_core::fact::{AllowancePool, Fact};
use ledger_core::{Charge, EntryAction, FreeReason};

use crate::event::{pricing_type_to_proto, reported_to_proto, template_category_to_proto};
use crate::v1;

fn free_reason_to_proto(reason: FreeReason) -> v1::FreeReason {
    match reason {
        FreeReason::EntryPoint => v1::FreeReason::EntryPoint,
        FreeReason::FreeTier => v1::FreeReason::FreeTier,
        FreeReason::FreeService => v1::FreeReason::FreeService,
        FreeReason::CustomerServiceWindow => v1::FreeReason::CustomerServiceWindow,
        FreeReason::NonTemplate => v1::FreeReason::NonTemplate,
        FreeReason::PerConversation => v1::FreeReason::PerConversation,
        FreeReason::ProviderPolicy => v1::FreeReason::ProviderPolicy,
    }
}

fn allowance(charge: &Charge) -> Option<v1::AllowancePool> {
    match charge {
        Charge::Allowance(AllowancePool { kind, scope, month }) => Some(v1::AllowancePool {
            kind: kind.as_str().to_owned(),
            scope: scope.to_string(),
            month: month.to_string(),
        }),
        Charge::Billable | Charge::Free(_) => None,
    }
}

impl From<&ledger_core::Entry> for v1::Entry {
    fn from(entry: &ledger_core::Entry) -> Self {
        let context = entry.fact.context();
        let fact = match &*entry.fact {
            Fact::ConversationOpened(c) => v1::entry::Fact::ConversationOpened(v1::ConversationOpened {
                category: c.category.as_str().to_owned(),
                era: u32::from(c.era.number()),
                opened_at: c.opened_at.0,
                expires_at: c.expires_at.0,
                opened_by: c.opened_by.to_string(),
                allowance: allowance(&c.charge),
                entry_point_source_id: c.entry_point.as_ref().and_then(|e| e.source_id.clone()),
                entry_point_ctwa_clid: c.entry_point.as_ref().and_then(|e| e.ctwa_clid.clone()),
            }),
            Fact::MessageBilled(m) => v1::entry::Fact::MessageBilled(v1::MessageBilled {
                message_id: m.message_id.to_string(),
                era: u32::from(m.era.number()),
                pricing_model: m.pricing_model.as_str().to_owned(),
                delivered_at: m.delivered_at.0,
                category: m.category.as_str().to_owned(),
                conversation: m.conversation.as_ref().map(|c| c.to_string()),
                class_source: m.classification.source.as_str().to_owned(),
                template_name: m.classification.template_name.as_deref().map(str::to_owned),
                template_language: m.classification.template_language.as_deref().map(str::to_owned),
                declared_category: m
                    .classification
                    .declared_category
                    .map_or(v1::TemplateCategory::Unspecified, template_category_to_proto)
                    .into(),
                allowance: allowance(&m.charge),
                reported: m.reported.as_deref().map(reported_to_proto),
                participants: m.participants.iter().map(|p| p.to_string()).collect(),
                tokens: m.tokens,
            }),
        };
        v1::Entry {
            id: entry.id.0.to_be_bytes().to_vec(),
            action: match entry.action {
                EntryAction::Post => v1::EntryAction::Post,
                EntryAction::Reverse => v1::EntryAction::Reverse,
            }
            .into(),
            reverses: entry.reverses.map(|r| r.0.to_be_bytes().to_vec()).unwrap_or_default(),
            billable: entry.billable,
            free_reason: entry.free_reason.map_or(v1::FreeReason::Unspecified, free_reason_to_proto).into(),
            pricing_type: entry
                .pricing_type
                .map_or(v1::PricingType::Unspecified, pricing_type_to_proto)
                .into(),
            context: Some(v1::BillingContext {
                waba_id: context.waba_id.to_string(),
                contact: Some(v1::ContactKey {
                    phone_number_id: context.contact.phone_number_id.to_string(),
                    user_id: context.contact.user_id.to_string(),
                }),
                recipient: context.recipient.as_deref().map(str::to_owned),
                local_month: context.local_month.to_string(),
                time_zone: context.time_zone.to_string(),
                time_zone_assumed: context.time_zone_assumed,
            }),
            rules: entry.fact.rules().iter().map(|r| r.id().to_owned()).collect(),
            evidence: entry.fact.evidence().iter().map(|e| e.to_string()).collect(),
            fact: Some(fact),
        }
    }
}
