//! `ledger_core::Entry` ↔ `ledger.v1.Entry`: the form the projector publishes and stores, and
//! back, so stored entries are read as the core's own (reconciliation, attribution).

use std::sync::Arc;

use ledger_core::category::{
    ConversationCategory, MessageClass, PricingCategory, PricingModel, TemplateCategory,
};
use ledger_core::fact::{
    AllowanceKind, AllowancePool, BillingContext, ClassSource, Classification, ConversationOpened,
    EntryPointRef, Fact, MessageBilled,
};
use ledger_core::rules::{Rule, RulePath};
use ledger_core::{Charge, ContactKey, EntryAction, Era, FreeReason, Id128, PricingType, Timestamp};

use crate::event::{reported_from_proto, ConvertError};

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
                entry_point: c.entry_point.is_some(),
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
                message_class: m.classification.class.map(|class| match class {
                    MessageClass::NonTemplate => "non_template".to_owned(),
                    MessageClass::Template(category) => category.as_str().to_owned(),
                }),
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

fn free_reason_from_proto(value: i32) -> Result<Option<FreeReason>, ConvertError> {
    let unknown = || ConvertError::Unknown { field: "free_reason", value: value.to_string() };
    Ok(Some(match v1::FreeReason::try_from(value).map_err(|_| unknown())? {
        v1::FreeReason::Unspecified => return Ok(None),
        v1::FreeReason::EntryPoint => FreeReason::EntryPoint,
        v1::FreeReason::FreeTier => FreeReason::FreeTier,
        v1::FreeReason::FreeService => FreeReason::FreeService,
        v1::FreeReason::CustomerServiceWindow => FreeReason::CustomerServiceWindow,
        v1::FreeReason::NonTemplate => FreeReason::NonTemplate,
        v1::FreeReason::PerConversation => FreeReason::PerConversation,
        v1::FreeReason::ProviderPolicy => FreeReason::ProviderPolicy,
    }))
}

fn pricing_type_from_proto(value: i32) -> Result<Option<PricingType>, ConvertError> {
    let unknown = || ConvertError::Unknown { field: "pricing_type", value: value.to_string() };
    Ok(Some(match v1::PricingType::try_from(value).map_err(|_| unknown())? {
        v1::PricingType::Unspecified => return Ok(None),
        v1::PricingType::Regular => PricingType::Regular,
        v1::PricingType::FreeCustomerService => PricingType::FreeCustomerService,
        v1::PricingType::FreeEntryPoint => PricingType::FreeEntryPoint,
        v1::PricingType::FreeGroupCustomerService => PricingType::FreeGroupCustomerService,
        v1::PricingType::FreeTier => PricingType::FreeTier,
    }))
}

/// A core enum from the name its serde attributes give it (the names `as_str` writes).
fn named<T: serde::de::DeserializeOwned>(field: &'static str, text: &str) -> Result<T, ConvertError> {
    use serde::de::IntoDeserializer;
    let deserializer: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        text.into_deserializer();
    T::deserialize(deserializer).map_err(|_| ConvertError::Unknown { field, value: text.to_owned() })
}

fn era_from_number(number: u32) -> Result<Era, ConvertError> {
    [
        Era::NotificationBased,
        Era::ConversationsV1,
        Era::ConversationCategories,
        Era::FreeService,
        Era::PerMessage,
        Era::PaidService,
    ]
    .into_iter()
    .find(|era| u32::from(era.number()) == number)
    .ok_or(ConvertError::Unknown { field: "era", value: number.to_string() })
}

fn id128(field: &'static str, bytes: &[u8]) -> Result<Id128, ConvertError> {
    let raw: [u8; 16] = bytes
        .try_into()
        .map_err(|_| ConvertError::Unknown { field, value: format!("{} bytes", bytes.len()) })?;
    Ok(Id128(u128::from_be_bytes(raw)))
}

/// The fact's own charge, from its allowance or, without one, from the verdict it was posted
/// with (a fact that is not an allowance's claim is posted as its charge says).
fn charge_of(
    pool: Option<v1::AllowancePool>,
    billable: bool,
    free_reason: Option<FreeReason>,
) -> Result<Charge, ConvertError> {
    Ok(match pool {
        Some(pool) => Charge::Allowance(AllowancePool {
            kind: named::<AllowanceKind>("allowance.kind", &pool.kind)?,
            scope: Arc::from(pool.scope),
            month: pool
                .month
                .parse()
                .map_err(|_| ConvertError::Unknown { field: "allowance.month", value: pool.month })?,
        }),
        None if billable => Charge::Billable,
        None => Charge::Free(free_reason.ok_or(ConvertError::Missing("free_reason"))?),
    })
}

impl TryFrom<v1::Entry> for ledger_core::Entry {
    type Error = ConvertError;

    fn try_from(entry: v1::Entry) -> Result<Self, Self::Error> {
        let action = match v1::EntryAction::try_from(entry.action) {
            Ok(v1::EntryAction::Post) => EntryAction::Post,
            Ok(v1::EntryAction::Reverse) => EntryAction::Reverse,
            _ => return Err(ConvertError::Unknown { field: "action", value: entry.action.to_string() }),
        };
        let free_reason = free_reason_from_proto(entry.free_reason)?;
        let context = entry.context.ok_or(ConvertError::Missing("context"))?;
        let contact = context.contact.ok_or(ConvertError::Missing("context.contact"))?;
        let context = BillingContext {
            waba_id: context.waba_id.into(),
            contact: ContactKey::new(&contact.phone_number_id, &contact.user_id),
            recipient: context.recipient.map(Arc::from),
            local_month: context.local_month.parse().map_err(|_| ConvertError::Unknown {
                field: "context.local_month",
                value: context.local_month,
            })?,
            time_zone: Arc::from(context.time_zone),
            time_zone_assumed: context.time_zone_assumed,
        };
        let mut rules = RulePath::new();
        for id in &entry.rules {
            rules.push(
                Rule::from_id(id)
                    .ok_or_else(|| ConvertError::Unknown { field: "rules", value: id.clone() })?,
            );
        }
        let evidence = entry.evidence.into_iter().map(Into::into).collect();
        let fact = match entry.fact.ok_or(ConvertError::Missing("fact"))? {
            v1::entry::Fact::ConversationOpened(c) => Fact::ConversationOpened(ConversationOpened {
                category: named::<ConversationCategory>("category", &c.category)?,
                era: era_from_number(c.era)?,
                opened_at: Timestamp(c.opened_at),
                expires_at: Timestamp(c.expires_at),
                opened_by: c.opened_by.into(),
                charge: charge_of(c.allowance, entry.billable, free_reason)?,
                entry_point: c.entry_point.then_some(EntryPointRef {
                    source_id: c.entry_point_source_id,
                    ctwa_clid: c.entry_point_ctwa_clid,
                }),
                context,
                rules,
                evidence,
            }),
            v1::entry::Fact::MessageBilled(m) => {
                let declared_category = match v1::TemplateCategory::try_from(m.declared_category) {
                    Ok(v1::TemplateCategory::Unspecified) => None,
                    Ok(v1::TemplateCategory::Marketing) => Some(TemplateCategory::Marketing),
                    Ok(v1::TemplateCategory::Utility) => Some(TemplateCategory::Utility),
                    Ok(v1::TemplateCategory::Authentication) => Some(TemplateCategory::Authentication),
                    Err(_) => {
                        let value = m.declared_category.to_string();
                        return Err(ConvertError::Unknown { field: "declared_category", value });
                    }
                };
                let class = match m.message_class.as_deref() {
                    None => None,
                    Some("non_template") => Some(MessageClass::NonTemplate),
                    Some(category) => {
                        Some(MessageClass::Template(TemplateCategory::parse(category).ok_or_else(|| {
                            ConvertError::Unknown { field: "message_class", value: category.to_owned() }
                        })?))
                    }
                };
                Fact::MessageBilled(MessageBilled {
                    message_id: m.message_id.into(),
                    era: era_from_number(m.era)?,
                    pricing_model: PricingModel::parse(&m.pricing_model)
                        .ok_or(ConvertError::Unknown { field: "pricing_model", value: m.pricing_model })?,
                    delivered_at: Timestamp(m.delivered_at),
                    category: named::<PricingCategory>("category", &m.category)?,
                    charge: charge_of(m.allowance, entry.billable, free_reason)?,
                    conversation: m.conversation.map(Into::into),
                    classification: Classification {
                        class,
                        source: named::<ClassSource>("class_source", &m.class_source)?,
                        template_name: m.template_name.map(Arc::from),
                        template_language: m.template_language.map(Arc::from),
                        declared_category,
                    },
                    reported: m.reported.map(reported_from_proto).transpose()?.map(Arc::new),
                    participants: m.participants.into_iter().map(Arc::from).collect(),
                    tokens: m.tokens,
                    context,
                    rules,
                    evidence,
                })
            }
        };
        Ok(ledger_core::Entry {
            id: id128("id", &entry.id)?,
            action,
            reverses: if entry.reverses.is_empty() {
                None
            } else {
                Some(id128("reverses", &entry.reverses)?)
            },
            billable: entry.billable,
            free_reason,
            pricing_type: pricing_type_from_proto(entry.pricing_type)?,
            fact: Arc::new(fact),
        })
    }
}
