//! What a send would cost now: the list rate of the card in force for the contact's market
//! (R5, R6), next to eligibility's verdict. Tiered categories quote the card's first band: the
//! tier a send falls in depends on the portfolio's accrual (R54), which eligibility does not
//! know.

use chrono_tz::Tz;
use ledger_core::{Eligibility, PricingCategory, SendPreview, Timestamp};
use serde::Serialize;

use crate::money::Money;
use crate::pricer::{card_category, card_rate, date_in};
use crate::Pricing;

/// The price of one kind of send for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub market: String,
    /// The rate-card category the send is priced at (paid service at the utility rate where
    /// the card has no service column, R80).
    pub rate_category: String,
    pub currency: String,
    /// Charged per message (or per participant reached, R59) when charged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_rate: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<chrono::NaiveDate>,
    /// Why there is no rate: the reason, never a guess.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpriced: Option<String>,
}

/// Eligibility with each chargeable send's quote.
#[derive(Debug, Clone, Serialize)]
pub struct PricedEligibility {
    #[serde(flatten)]
    pub eligibility: Eligibility,
    pub quotes: Quotes,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Quotes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_form: Option<Quote>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marketing: Option<Quote>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utility: Option<Quote>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Quote>,
}

impl Pricing {
    /// The list rate of `category` for `recipient` at `at` on the WABA's card (R5, R6).
    pub fn quote(
        &self,
        waba_id: &str,
        time_zone: &str,
        recipient: &str,
        category: PricingCategory,
        at: Timestamp,
    ) -> Quote {
        let tz: Tz = time_zone.parse().unwrap_or(Tz::UTC);
        let date = date_in(tz, at);
        let (_, currency, _) = self.business_of(waba_id);
        let located = self.markets.locate(recipient, date);
        let card = self.book.card(currency, date);
        let rate_category = card_category(card, &located.market, category.rate_category().as_str());
        let mut quote = Quote {
            market: located.market.clone(),
            rate_category: rate_category.to_owned(),
            currency: currency.to_owned(),
            unit_rate: None,
            card: card.map(|c| c.effective_from),
            unpriced: None,
        };
        match card_rate(card, &located.market, rate_category, 1, (currency, date)) {
            Ok(tier) => quote.unit_rate = Some(tier.rate),
            Err(reason) => quote.unpriced = Some(reason),
        }
        quote
    }

    /// Quotes every send eligibility says may be charged (a free one needs no price; an
    /// allowance's claim is quoted at the rate it pays once the allowance is used).
    pub fn price_eligibility(
        &self,
        waba_id: &str,
        recipient: &str,
        eligibility: Eligibility,
    ) -> PricedEligibility {
        let quote = |preview: &SendPreview| {
            let allowance = matches!(preview.charge, Some(ledger_core::Charge::Allowance(_)));
            let chargeable = preview.allowed && (preview.charged() == Some(true) || allowance);
            let category = preview.category.filter(|_| chargeable && preview.opens.is_none())?;
            Some(self.quote(waba_id, &eligibility.time_zone, recipient, category, eligibility.at))
        };
        let quotes = Quotes {
            free_form: quote(&eligibility.free_form),
            marketing: quote(&eligibility.marketing),
            utility: quote(&eligibility.utility),
            authentication: quote(&eligibility.authentication),
        };
        PricedEligibility { eligibility, quotes }
    }
}
