//! Template categories, conversation categories and the provider's reported pricing values.
//!
//! Reported values come in several spellings across eras (Q6, Q7); parsing accepts all of them
//! and keeps anything unknown verbatim rather than failing, so new values never drop an event.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The category of an approved template (R20).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateCategory {
    Marketing,
    Utility,
    Authentication,
}

impl TemplateCategory {
    pub const ALL: [TemplateCategory; 3] =
        [TemplateCategory::Marketing, TemplateCategory::Utility, TemplateCategory::Authentication];

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateCategory::Marketing => "marketing",
            TemplateCategory::Utility => "utility",
            TemplateCategory::Authentication => "authentication",
        }
    }

    /// Parses Meta's spellings (lower or upper case, as in `template_category_update`).
    pub fn parse(text: &str) -> Option<TemplateCategory> {
        match text.to_ascii_lowercase().as_str() {
            "marketing" => Some(TemplateCategory::Marketing),
            "utility" => Some(TemplateCategory::Utility),
            "authentication" => Some(TemplateCategory::Authentication),
            _ => None,
        }
    }
}

impl fmt::Display for TemplateCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The category of a conversation (CBP, eras 1–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationCategory {
    /// Era 1 (R12): opened by a reply inside the customer service window.
    UserInitiated,
    /// Era 1 (R12): opened by a template outside the customer service window.
    BusinessInitiated,
    Marketing,
    Utility,
    Authentication,
    Service,
    /// A free entry point conversation (R14, R25).
    ReferralConversion,
}

impl ConversationCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationCategory::UserInitiated => "user_initiated",
            ConversationCategory::BusinessInitiated => "business_initiated",
            ConversationCategory::Marketing => "marketing",
            ConversationCategory::Utility => "utility",
            ConversationCategory::Authentication => "authentication",
            ConversationCategory::Service => "service",
            ConversationCategory::ReferralConversion => "referral_conversion",
        }
    }
}

impl From<TemplateCategory> for ConversationCategory {
    fn from(category: TemplateCategory) -> Self {
        match category {
            TemplateCategory::Marketing => ConversationCategory::Marketing,
            TemplateCategory::Utility => ConversationCategory::Utility,
            TemplateCategory::Authentication => ConversationCategory::Authentication,
        }
    }
}

/// The category a delivered message is counted under (R52 for per-message pricing; for
/// conversation-based pricing the category of the conversation it belongs to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PricingCategory {
    Marketing,
    /// Marketing sent through the Marketing Messages Lite API (R51).
    MarketingLite,
    Utility,
    /// Authentication; whether the international rate applies (R29) is a pricing decision.
    Authentication,
    Service,
    ReferralConversion,
    UserInitiated,
    BusinessInitiated,
    /// Group messages (R59): charged per participant delivered to, at each one's market rate.
    GroupMarketing,
    /// R59: free inside the group's customer service window; never tier-eligible.
    GroupUtility,
    GroupService,
    /// R83b: a Meta Business Agent message, charged per token apart from the rate card.
    MetaBusinessAgent,
    /// R83c: an AI Provider's message (analytics `AI_BOT`), outside service pricing.
    GeneralPurposeAi,
}

impl PricingCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            PricingCategory::Marketing => "marketing",
            PricingCategory::MarketingLite => "marketing_lite",
            PricingCategory::Utility => "utility",
            PricingCategory::Authentication => "authentication",
            PricingCategory::Service => "service",
            PricingCategory::ReferralConversion => "referral_conversion",
            PricingCategory::UserInitiated => "user_initiated",
            PricingCategory::BusinessInitiated => "business_initiated",
            PricingCategory::GroupMarketing => "group_marketing",
            PricingCategory::GroupUtility => "group_utility",
            PricingCategory::GroupService => "group_service",
            PricingCategory::MetaBusinessAgent => "meta_business_agent",
            PricingCategory::GeneralPurposeAi => "general_purpose_ai",
        }
    }

    /// A group message's category (R59).
    pub fn is_group(self) -> bool {
        matches!(
            self,
            PricingCategory::GroupMarketing | PricingCategory::GroupUtility | PricingCategory::GroupService
        )
    }

    /// The rate-card category a group category is charged at ("at each recipient's country
    /// rate", R59, S13); every other category is its own.
    pub fn rate_category(self) -> PricingCategory {
        match self {
            PricingCategory::GroupMarketing => PricingCategory::Marketing,
            PricingCategory::GroupUtility => PricingCategory::Utility,
            PricingCategory::GroupService => PricingCategory::Service,
            other => other,
        }
    }
}

impl From<ConversationCategory> for PricingCategory {
    fn from(category: ConversationCategory) -> Self {
        match category {
            ConversationCategory::UserInitiated => PricingCategory::UserInitiated,
            ConversationCategory::BusinessInitiated => PricingCategory::BusinessInitiated,
            ConversationCategory::Marketing => PricingCategory::Marketing,
            ConversationCategory::Utility => PricingCategory::Utility,
            ConversationCategory::Authentication => PricingCategory::Authentication,
            ConversationCategory::Service => PricingCategory::Service,
            ConversationCategory::ReferralConversion => PricingCategory::ReferralConversion,
        }
    }
}

/// `pricing.pricing_model` as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PricingModel {
    /// Notification-based (era 0).
    Nbp,
    /// Conversation-based (eras 1–3, and R56's spanning utility conversations).
    Cbp,
    /// Per-message (eras 4–5).
    Pmp,
}

impl PricingModel {
    pub fn as_str(self) -> &'static str {
        match self {
            PricingModel::Nbp => "NBP",
            PricingModel::Cbp => "CBP",
            PricingModel::Pmp => "PMP",
        }
    }

    pub fn parse(text: &str) -> Option<PricingModel> {
        match text.to_ascii_uppercase().as_str() {
            "NBP" => Some(PricingModel::Nbp),
            "CBP" => Some(PricingModel::Cbp),
            "PMP" => Some(PricingModel::Pmp),
            _ => None,
        }
    }
}

/// `pricing.type` (R52, R59), also used for our own per-message and per-conversation verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PricingType {
    Regular,
    FreeCustomerService,
    FreeEntryPoint,
    FreeGroupCustomerService,
    /// Analytics' `FREE_TIER` conversations (R13, R26).
    FreeTier,
}

impl PricingType {
    pub fn as_str(self) -> &'static str {
        match self {
            PricingType::Regular => "regular",
            PricingType::FreeCustomerService => "free_customer_service",
            PricingType::FreeEntryPoint => "free_entry_point",
            PricingType::FreeGroupCustomerService => "free_group_customer_service",
            PricingType::FreeTier => "free_tier",
        }
    }

    pub fn parse(text: &str) -> Option<PricingType> {
        match text.to_ascii_lowercase().as_str() {
            "regular" => Some(PricingType::Regular),
            "free_customer_service" => Some(PricingType::FreeCustomerService),
            "free_entry_point" | "free_entry" => Some(PricingType::FreeEntryPoint),
            "free_group_customer_service" => Some(PricingType::FreeGroupCustomerService),
            "free_tier" => Some(PricingType::FreeTier),
            _ => None,
        }
    }
}

/// A category value as a provider reported it in `pricing.category` or
/// `conversation.origin.type`, normalised across spellings (Q6, Q7). In JSON it is the plain
/// string; any spelling is accepted on input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReportedCategory {
    Marketing,
    MarketingLite,
    Utility,
    Authentication,
    AuthenticationInternational,
    Service,
    ReferralConversion,
    UserInitiated,
    BusinessInitiated,
    GroupMarketing,
    GroupUtility,
    GroupService,
    /// R83c: AI Providers (analytics `AI_BOT`).
    GeneralPurposeAi,
    /// Anything else, kept verbatim.
    Other(String),
}

impl ReportedCategory {
    /// The normalised spelling (what `parse` maps every accepted spelling to).
    pub fn as_str(&self) -> &str {
        match self {
            ReportedCategory::Marketing => "marketing",
            ReportedCategory::MarketingLite => "marketing_lite",
            ReportedCategory::Utility => "utility",
            ReportedCategory::Authentication => "authentication",
            ReportedCategory::AuthenticationInternational => "authentication_international",
            ReportedCategory::Service => "service",
            ReportedCategory::ReferralConversion => "referral_conversion",
            ReportedCategory::UserInitiated => "user_initiated",
            ReportedCategory::BusinessInitiated => "business_initiated",
            ReportedCategory::GroupMarketing => "group_marketing",
            ReportedCategory::GroupUtility => "group_utility",
            ReportedCategory::GroupService => "group_service",
            ReportedCategory::GeneralPurposeAi => "general_purpose_ai",
            ReportedCategory::Other(text) => text,
        }
    }

    pub fn parse(text: &str) -> ReportedCategory {
        match text.to_ascii_lowercase().replace('-', "_").as_str() {
            "marketing" => ReportedCategory::Marketing,
            "marketing_lite" => ReportedCategory::MarketingLite,
            "utility" => ReportedCategory::Utility,
            "authentication" => ReportedCategory::Authentication,
            // Q7: hyphen in the status reference, underscore elsewhere.
            "authentication_international" => ReportedCategory::AuthenticationInternational,
            "service" => ReportedCategory::Service,
            "referral_conversion" => ReportedCategory::ReferralConversion,
            // Q6: Meta's reference said customer_initiated, payloads say user_initiated.
            "user_initiated" | "customer_initiated" => ReportedCategory::UserInitiated,
            "business_initiated" | "business_initated" => ReportedCategory::BusinessInitiated,
            "group_marketing" => ReportedCategory::GroupMarketing,
            "group_utility" => ReportedCategory::GroupUtility,
            "group_service" => ReportedCategory::GroupService,
            "general_purpose_ai" | "ai_bot" => ReportedCategory::GeneralPurposeAi,
            _ => ReportedCategory::Other(text.to_owned()),
        }
    }

    /// What a reported category says about the message's own kind, where it says anything.
    /// Era 1 values and `referral_conversion` describe the conversation, not the message.
    pub fn message_class(&self) -> Option<MessageClass> {
        match self {
            ReportedCategory::Marketing
            | ReportedCategory::MarketingLite
            | ReportedCategory::GroupMarketing => Some(MessageClass::Template(TemplateCategory::Marketing)),
            ReportedCategory::Utility | ReportedCategory::GroupUtility => {
                Some(MessageClass::Template(TemplateCategory::Utility))
            }
            ReportedCategory::Authentication | ReportedCategory::AuthenticationInternational => {
                Some(MessageClass::Template(TemplateCategory::Authentication))
            }
            ReportedCategory::Service
            | ReportedCategory::GroupService
            | ReportedCategory::GeneralPurposeAi => Some(MessageClass::NonTemplate),
            ReportedCategory::ReferralConversion
            | ReportedCategory::UserInitiated
            | ReportedCategory::BusinessInitiated
            | ReportedCategory::Other(_) => None,
        }
    }
}

impl Serialize for ReportedCategory {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReportedCategory {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(ReportedCategory::parse(&text))
    }
}

/// What kind of business message a delivery is, as far as billing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageClass {
    Template(TemplateCategory),
    /// Text, media, interactive, reaction, location … (R2, R22, R51).
    NonTemplate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q6_q7_spellings_are_accepted() {
        assert_eq!(ReportedCategory::parse("customer_initiated"), ReportedCategory::UserInitiated);
        assert_eq!(ReportedCategory::parse("user_initiated"), ReportedCategory::UserInitiated);
        assert_eq!(ReportedCategory::parse("business_initated"), ReportedCategory::BusinessInitiated);
        assert_eq!(
            ReportedCategory::parse("authentication-international"),
            ReportedCategory::AuthenticationInternational
        );
        assert_eq!(
            ReportedCategory::parse("authentication_international"),
            ReportedCategory::AuthenticationInternational
        );
        assert_eq!(ReportedCategory::parse("UTILITY"), ReportedCategory::Utility);
        assert_eq!(ReportedCategory::parse("general_purpose_ai"), ReportedCategory::GeneralPurposeAi);
        assert_eq!(ReportedCategory::parse("AI_BOT"), ReportedCategory::GeneralPurposeAi);
        assert_eq!(ReportedCategory::parse("something_new"), ReportedCategory::Other("something_new".into()));
    }
}
