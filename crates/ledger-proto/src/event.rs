//! `ledger.v1.Event` ⇄ `ledger_core::Event`.

use ledger_core as core;
use ledger_core::{
    DeliveryStatus, PricingModel, PricingType, ReportedCategory, SendContent, TemplateCategory, Timestamp,
};

use crate::v1;

/// A protobuf event that does not make a core event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{field} has an unknown value {value:?}")]
    Unknown { field: &'static str, value: String },
}

pub(crate) fn template_category_to_proto(category: TemplateCategory) -> v1::TemplateCategory {
    match category {
        TemplateCategory::Marketing => v1::TemplateCategory::Marketing,
        TemplateCategory::Utility => v1::TemplateCategory::Utility,
        TemplateCategory::Authentication => v1::TemplateCategory::Authentication,
    }
}

fn template_category_from_proto(value: i32, field: &'static str) -> Result<TemplateCategory, ConvertError> {
    match v1::TemplateCategory::try_from(value) {
        Ok(v1::TemplateCategory::Marketing) => Ok(TemplateCategory::Marketing),
        Ok(v1::TemplateCategory::Utility) => Ok(TemplateCategory::Utility),
        Ok(v1::TemplateCategory::Authentication) => Ok(TemplateCategory::Authentication),
        Ok(v1::TemplateCategory::Unspecified) => Err(ConvertError::Missing(field)),
        Err(_) => Err(ConvertError::Unknown { field, value: value.to_string() }),
    }
}

fn status_to_proto(status: DeliveryStatus) -> v1::DeliveryStatus {
    match status {
        DeliveryStatus::Sent => v1::DeliveryStatus::Sent,
        DeliveryStatus::Delivered => v1::DeliveryStatus::Delivered,
        DeliveryStatus::Read => v1::DeliveryStatus::Read,
        DeliveryStatus::Played => v1::DeliveryStatus::Played,
        DeliveryStatus::Failed => v1::DeliveryStatus::Failed,
    }
}

fn status_from_proto(value: i32) -> Result<DeliveryStatus, ConvertError> {
    match v1::DeliveryStatus::try_from(value) {
        Ok(v1::DeliveryStatus::Sent) => Ok(DeliveryStatus::Sent),
        Ok(v1::DeliveryStatus::Delivered) => Ok(DeliveryStatus::Delivered),
        Ok(v1::DeliveryStatus::Read) => Ok(DeliveryStatus::Read),
        Ok(v1::DeliveryStatus::Played) => Ok(DeliveryStatus::Played),
        Ok(v1::DeliveryStatus::Failed) => Ok(DeliveryStatus::Failed),
        Ok(v1::DeliveryStatus::Unspecified) => Err(ConvertError::Missing("message_status.status")),
        Err(_) => Err(ConvertError::Unknown { field: "message_status.status", value: value.to_string() }),
    }
}

pub(crate) fn pricing_type_to_proto(kind: PricingType) -> v1::PricingType {
    match kind {
        PricingType::Regular => v1::PricingType::Regular,
        PricingType::FreeCustomerService => v1::PricingType::FreeCustomerService,
        PricingType::FreeEntryPoint => v1::PricingType::FreeEntryPoint,
        PricingType::FreeGroupCustomerService => v1::PricingType::FreeGroupCustomerService,
        PricingType::FreeTier => v1::PricingType::FreeTier,
    }
}

pub(crate) fn reported_to_proto(r: &core::ReportedPricing) -> v1::ReportedPricing {
    v1::ReportedPricing {
        pricing_model: r.pricing_model.map(|m| m.as_str().to_owned()),
        category: r.category.as_ref().map(|c| c.as_str().to_owned()),
        pricing_type: r.pricing_type.map(|t| t.as_str().to_owned()),
        billable: r.billable,
        conversation_id: r.conversation_id.clone(),
        conversation_origin: r.conversation_origin.as_ref().map(|c| c.as_str().to_owned()),
        conversation_expires_at: r.conversation_expires_at.map(|t| t.0),
        cost: r
            .cost
            .as_ref()
            .map(|c| v1::ReportedCost { amount: c.amount.clone(), currency: c.currency.clone() }),
    }
}

pub(crate) fn reported_from_proto(r: v1::ReportedPricing) -> Result<core::ReportedPricing, ConvertError> {
    let pricing_model = r
        .pricing_model
        .map(|m| {
            PricingModel::parse(&m).ok_or(ConvertError::Unknown { field: "reported.pricing_model", value: m })
        })
        .transpose()?;
    let pricing_type = r
        .pricing_type
        .map(|t| {
            PricingType::parse(&t).ok_or(ConvertError::Unknown { field: "reported.pricing_type", value: t })
        })
        .transpose()?;
    Ok(core::ReportedPricing {
        pricing_model,
        category: r.category.as_deref().map(ReportedCategory::parse),
        pricing_type,
        billable: r.billable,
        conversation_id: r.conversation_id,
        conversation_origin: r.conversation_origin.as_deref().map(ReportedCategory::parse),
        conversation_expires_at: r.conversation_expires_at.map(Timestamp),
        cost: r.cost.map(|c| core::ReportedCost { amount: c.amount, currency: c.currency }),
    })
}

impl From<&core::Event> for v1::Event {
    fn from(event: &core::Event) -> Self {
        use v1::event::Kind;
        let kind = match &event.kind {
            core::EventKind::InboundMessage(m) => Kind::InboundMessage(v1::InboundMessage {
                message_id: m.message_id.to_string(),
                entry_point: m.entry_point.as_ref().map(|e| v1::EntryPoint {
                    source_id: e.source_id.clone(),
                    source_url: e.source_url.clone(),
                    source_type: e.source_type.clone(),
                    ctwa_clid: e.ctwa_clid.clone(),
                    headline: e.headline.clone(),
                    body: e.body.clone(),
                    media_type: e.media_type.clone(),
                    media_url: e.media_url.clone(),
                }),
            }),
            core::EventKind::SendRecord(s) => Kind::SendRecord(v1::SendRecord {
                message_id: s.message_id.to_string(),
                recipient: s.recipient.as_deref().map(str::to_owned),
                content: Some(match &s.content {
                    SendContent::Template(t) => v1::send_record::Content::Template(v1::TemplateUse {
                        name: t.name.to_string(),
                        language: t.language.to_string(),
                        category: template_category_to_proto(t.category).into(),
                    }),
                    SendContent::NonTemplate { kind } => {
                        v1::send_record::Content::NonTemplate(v1::NonTemplate { kind: kind.clone() })
                    }
                }),
                marketing_lite: s.marketing_lite,
                meta_business_agent: s.meta_business_agent.map(|a| v1::BusinessAgentUse { tokens: a.tokens }),
            }),
            core::EventKind::MessageStatus(s) => Kind::MessageStatus(v1::MessageStatus {
                message_id: s.message_id.to_string(),
                status: status_to_proto(s.status).into(),
                recipient: s.recipient.as_deref().map(str::to_owned),
                participant: s.participant.as_deref().map(str::to_owned),
                errors: s
                    .errors
                    .iter()
                    .map(|e| v1::StatusError { code: e.code, title: e.title.clone() })
                    .collect(),
                reported: s.reported.as_ref().map(reported_to_proto),
            }),
            core::EventKind::PricingReport(r) => Kind::PricingReport(v1::PricingReport {
                message_id: r.message_id.to_string(),
                reported: Some(reported_to_proto(&r.reported)),
            }),
            core::EventKind::TemplateCategoryChange(c) => {
                Kind::TemplateCategoryChange(v1::TemplateCategoryChange {
                    name: c.name.clone(),
                    language: c.language.clone(),
                    category: template_category_to_proto(c.category).into(),
                    effective_at: c.effective_at.0,
                })
            }
            core::EventKind::AccountSettings(a) => Kind::AccountSettings(v1::AccountSettings {
                time_zone: a.time_zone.clone(),
                currency: a.currency.clone(),
                business_id: a.business_id.clone(),
            }),
            core::EventKind::VolumeTierUpdate(t) => Kind::VolumeTierUpdate(v1::VolumeTierUpdate {
                pricing_category: t.pricing_category.clone(),
                region: t.region.clone(),
                tier: t.tier.clone(),
                effective_month: t.effective_month.to_string(),
                tier_update_time: t.tier_update_time.0,
            }),
        };
        v1::Event {
            event_id: event.event_id.to_string(),
            schema_version: event.schema_version,
            event_time: event.event_time.0,
            receive_time: event.receive_time.0,
            provider: event.provider.clone(),
            waba_id: event.waba_id.to_string(),
            contact: event.contact.as_ref().map(|c| v1::ContactKey {
                phone_number_id: c.phone_number_id.to_string(),
                user_id: c.user_id.to_string(),
            }),
            kind: Some(kind),
        }
    }
}

impl TryFrom<v1::Event> for core::Event {
    type Error = ConvertError;

    fn try_from(event: v1::Event) -> Result<Self, Self::Error> {
        use v1::event::Kind;
        let kind = match event.kind.ok_or(ConvertError::Missing("kind"))? {
            Kind::InboundMessage(m) => core::EventKind::InboundMessage(core::InboundMessage {
                message_id: m.message_id.into(),
                entry_point: m.entry_point.map(|e| core::EntryPoint {
                    source_id: e.source_id,
                    source_url: e.source_url,
                    source_type: e.source_type,
                    ctwa_clid: e.ctwa_clid,
                    headline: e.headline,
                    body: e.body,
                    media_type: e.media_type,
                    media_url: e.media_url,
                }),
            }),
            Kind::SendRecord(s) => {
                let content = match s.content.ok_or(ConvertError::Missing("send_record.content"))? {
                    v1::send_record::Content::Template(t) => SendContent::Template(core::TemplateUse {
                        category: template_category_from_proto(t.category, "send_record.template.category")?,
                        name: t.name.into(),
                        language: t.language.into(),
                    }),
                    v1::send_record::Content::NonTemplate(n) => SendContent::NonTemplate { kind: n.kind },
                };
                core::EventKind::SendRecord(core::SendRecord {
                    message_id: s.message_id.into(),
                    recipient: s.recipient.map(Into::into),
                    content,
                    marketing_lite: s.marketing_lite,
                    meta_business_agent: s
                        .meta_business_agent
                        .map(|a| core::BusinessAgentUse { tokens: a.tokens }),
                })
            }
            Kind::MessageStatus(s) => core::EventKind::MessageStatus(core::MessageStatus {
                status: status_from_proto(s.status)?,
                message_id: s.message_id.into(),
                recipient: s.recipient.map(Into::into),
                participant: s.participant.map(Into::into),
                errors: s
                    .errors
                    .into_iter()
                    .map(|e| core::StatusError { code: e.code, title: e.title })
                    .collect(),
                reported: s.reported.map(reported_from_proto).transpose()?,
            }),
            Kind::PricingReport(r) => core::EventKind::PricingReport(core::PricingReport {
                message_id: r.message_id.into(),
                reported: reported_from_proto(
                    r.reported.ok_or(ConvertError::Missing("pricing_report.reported"))?,
                )?,
            }),
            Kind::TemplateCategoryChange(c) => {
                core::EventKind::TemplateCategoryChange(core::TemplateCategoryChange {
                    category: template_category_from_proto(c.category, "template_category_change.category")?,
                    name: c.name,
                    language: c.language,
                    effective_at: Timestamp(c.effective_at),
                })
            }
            Kind::AccountSettings(a) => core::EventKind::AccountSettings(core::AccountSettings {
                time_zone: a.time_zone,
                currency: a.currency,
                business_id: a.business_id,
            }),
            Kind::VolumeTierUpdate(t) => core::EventKind::VolumeTierUpdate(core::VolumeTierUpdate {
                effective_month: t.effective_month.parse().map_err(|_| ConvertError::Unknown {
                    field: "volume_tier_update.effective_month",
                    value: t.effective_month.clone(),
                })?,
                pricing_category: t.pricing_category,
                region: t.region,
                tier: t.tier,
                tier_update_time: Timestamp(t.tier_update_time),
            }),
        };
        Ok(core::Event {
            event_id: event.event_id.into(),
            schema_version: event.schema_version,
            event_time: Timestamp(event.event_time),
            receive_time: Timestamp(event.receive_time),
            provider: event.provider,
            waba_id: event.waba_id.into(),
            contact: event.contact.map(|c| core::ContactKey::new(&c.phone_number_id, &c.user_id)),
            kind,
        })
    }
}
