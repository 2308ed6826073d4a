//! Rate cards: one CSV per currency and effective date, loaded at start-up and validated.
//!
//! Row format: `effective_from,currency,market,category,tier_from,tier_to,rate[,source]` — tiers
//! are inclusive message counts (`tier_to` = `MAX` for the open top tier); a market–category
//! without volume tiers has one row `1,MAX`. A rate of `n/a` says the card's sources publish no
//! figure for that market–category: its charges stay unpriced with that reason. The optional
//! `source` column says where a row's figure comes from (`rates/SOURCES.md` expands it). A card
//! takes effect at 00:00 in each WABA's time zone on its date and stays in force until the next
//! card of its currency (R6, R7).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Deserialize;

use crate::market::MarketMap;
use crate::money::Money;

/// Categories a card may price. Era 1 cards price conversation types (R12); later cards
/// categories (R20, R29, R51).
pub const CATEGORIES: [&str; 8] = [
    "business_initiated",
    "user_initiated",
    "marketing",
    "marketing_lite",
    "utility",
    "authentication",
    "authentication_international",
    "service",
];

/// Categories that only some markets have: their absence is not a gap.
const OPTIONAL_CATEGORIES: [&str; 3] = ["authentication_international", "marketing_lite", "service"];

/// One band of a market–category's rates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub from: u64,
    /// `None`: no upper bound.
    pub to: Option<u64>,
    pub rate: Money,
}

impl Tier {
    /// `LOWER:UPPER` as Meta's analytics print it (R54, §5.2).
    pub fn label(&self) -> String {
        match self.to {
            Some(to) => format!("{}:{to}", self.from),
            None => format!("{}:MAX", self.from),
        }
    }

    fn contains(&self, position: u64) -> bool {
        position >= self.from && self.to.is_none_or(|to| position <= to)
    }
}

/// A rate card in force from `effective_from` (local date of each WABA).
#[derive(Debug, Clone)]
pub struct RateCard {
    pub effective_from: NaiveDate,
    pub currency: String,
    /// Where the card was read from, for errors and explanations.
    pub source: String,
    rates: BTreeMap<(String, String), Vec<Tier>>,
    /// Market–categories the card names without a figure (`n/a`).
    unpublished: BTreeSet<(String, String)>,
}

impl RateCard {
    /// The tier and rate for the `position`-th charged message of its tier accrual (1-based);
    /// `None` when the card has no rate for the market–category.
    pub fn rate(&self, market: &str, category: &str, position: u64) -> Option<&Tier> {
        let tiers = self.rates.get(&(market.to_owned(), category.to_owned()))?;
        tiers.iter().find(|t| t.contains(position.max(1)))
    }

    pub fn has(&self, market: &str, category: &str) -> bool {
        self.rates.contains_key(&(market.to_owned(), category.to_owned()))
    }

    /// Why the card has no rate for a market–category, in words for an invoice line.
    pub fn missing_reason(&self, market: &str, category: &str) -> String {
        let key = (market.to_owned(), category.to_owned());
        if self.unpublished.contains(&key) {
            format!(
                "card {} lists no published {category} rate for {market} (its sources give none; rates/SOURCES.md)",
                self.effective_from
            )
        } else if !self.markets().contains(market) {
            format!("card {} does not price {market} (rates/SOURCES.md)", self.effective_from)
        } else {
            format!("card {} has no {category} rate for {market}", self.effective_from)
        }
    }

    /// Markets the card prices.
    pub fn markets(&self) -> BTreeSet<&str> {
        self.rates.keys().chain(&self.unpublished).map(|(m, _)| m.as_str()).collect()
    }

    /// Markets in force on the card's date that it does not price (their lines are reported
    /// as unpriced rather than guessed).
    pub fn missing_markets(&self, markets: &MarketMap) -> Vec<String> {
        let priced = self.markets();
        markets.markets_on(self.effective_from).into_iter().filter(|m| !priced.contains(m.as_str())).collect()
    }
}

/// Why a rate card is refused. Every variant names the file and, where there is one, the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("{file} line {line}: {reason}")]
    Row { file: String, line: u64, reason: String },
    #[error("{file}: {market}/{category}: tiers {first} and {second} overlap")]
    Overlap { file: String, market: String, category: String, first: String, second: String },
    #[error("{file}: {market}/{category}: {reason}")]
    Gap { file: String, market: String, category: String, reason: String },
    #[error("{file}: market {market} has no {category} rate although other markets of the card have one")]
    MissingCategory { file: String, market: String, category: String },
    #[error("{file}: the card has no rows")]
    Empty { file: String },
    #[error("{first} and {second} are both the {currency} card effective {date}")]
    Duplicate { first: String, second: String, currency: String, date: NaiveDate },
}

#[derive(Debug, Deserialize)]
struct CardRow {
    effective_from: NaiveDate,
    currency: String,
    market: String,
    category: String,
    tier_from: u64,
    tier_to: String,
    rate: String,
    /// Provenance for readers (see `rates/SOURCES.md`); not used in pricing.
    #[serde(default, rename = "source")]
    _source: Option<String>,
}

impl RateCard {
    /// Parses and validates one card; `markets` decides which market names exist on its date.
    pub fn from_csv(file: &str, text: &str, markets: &MarketMap) -> Result<RateCard, CardError> {
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
        let mut card: Option<RateCard> = None;
        let mut known: Option<BTreeSet<String>> = None;
        for (index, row) in reader.deserialize::<CardRow>().enumerate() {
            let line = index as u64 + 2;
            let error = |reason: String| CardError::Row { file: file.to_owned(), line, reason };
            let row = row.map_err(|e| error(e.to_string()))?;
            let card = card.get_or_insert_with(|| RateCard {
                effective_from: row.effective_from,
                currency: row.currency.clone(),
                source: file.to_owned(),
                rates: BTreeMap::new(),
                unpublished: BTreeSet::new(),
            });
            if row.effective_from != card.effective_from || row.currency != card.currency {
                return Err(error(format!(
                    "row is for {} {} but the card is {} {}: one card per file",
                    row.currency, row.effective_from, card.currency, card.effective_from
                )));
            }
            if row.currency.len() != 3 || !row.currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(error(format!("currency {:?} is not an ISO 4217 code", row.currency)));
            }
            let known = known.get_or_insert_with(|| markets.markets_on(card.effective_from));
            if !known.contains(&row.market) {
                return Err(error(format!(
                    "unknown market {:?} on {} (markets.csv names: {})",
                    row.market,
                    card.effective_from,
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            if !CATEGORIES.contains(&row.category.as_str()) {
                return Err(error(format!(
                    "unknown category {:?} (expected one of {})",
                    row.category,
                    CATEGORIES.join(", ")
                )));
            }
            let to = match row.tier_to.as_str() {
                "MAX" => None,
                text => Some(
                    text.parse::<u64>()
                        .map_err(|_| error(format!("tier_to {text:?} is not a count or MAX")))?,
                ),
            };
            if row.tier_from == 0 || to.is_some_and(|to| to < row.tier_from) {
                return Err(error(format!("tier {}:{} is empty or starts at 0", row.tier_from, row.tier_to)));
            }
            if row.rate == "n/a" {
                card.unpublished.insert((row.market, row.category));
                continue;
            }
            let rate: Money = row.rate.parse().map_err(|e| error(format!("rate: {e}")))?;
            if rate < Money::ZERO {
                return Err(error(format!("rate {rate} is negative")));
            }
            card.rates.entry((row.market, row.category)).or_default().push(Tier {
                from: row.tier_from,
                to,
                rate,
            });
        }
        let mut card = card.ok_or_else(|| CardError::Empty { file: file.to_owned() })?;
        card.check_tiers()?;
        card.check_categories()?;
        Ok(card)
    }

    /// Tiers of each market–category must start at 1, be contiguous and end at MAX.
    fn check_tiers(&mut self) -> Result<(), CardError> {
        for ((market, category), tiers) in &mut self.rates {
            tiers.sort_by_key(|t| t.from);
            let gap = |reason: String| CardError::Gap {
                file: self.source.clone(),
                market: market.clone(),
                category: category.clone(),
                reason,
            };
            if tiers[0].from != 1 {
                return Err(gap(format!("the first tier starts at {}, not 1", tiers[0].from)));
            }
            for pair in tiers.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                match a.to {
                    // An open top band, or one reaching into the next: both count twice.
                    None => {}
                    Some(to) if b.from <= to => {}
                    Some(to) if b.from != to + 1 => {
                        return Err(gap(format!("no rate for counts {} to {}", to + 1, b.from - 1)))
                    }
                    Some(_) => continue,
                }
                return Err(CardError::Overlap {
                    file: self.source.clone(),
                    market: market.clone(),
                    category: category.clone(),
                    first: a.label(),
                    second: b.label(),
                });
            }
            if let Some(to) = tiers.last().and_then(|t| t.to) {
                return Err(gap(format!("the last tier ends at {to}; it must end at MAX")));
            }
        }
        Ok(())
    }

    /// Every market must carry every non-optional category any market of the card carries, as
    /// a rate or as an explicit `n/a`.
    fn check_categories(&self) -> Result<(), CardError> {
        let required: BTreeSet<&str> =
            self.rates.keys().map(|(_, c)| c.as_str()).filter(|c| !OPTIONAL_CATEGORIES.contains(c)).collect();
        for market in self.markets() {
            for category in &required {
                let named = (market.to_owned(), (*category).to_owned());
                if !self.has(market, category) && !self.unpublished.contains(&named) {
                    return Err(CardError::MissingCategory {
                        file: self.source.clone(),
                        market: market.to_owned(),
                        category: (*category).to_owned(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Every loaded card, by currency and date.
#[derive(Debug, Clone, Default)]
pub struct RateBook {
    cards: BTreeMap<String, BTreeMap<NaiveDate, RateCard>>,
}

impl RateBook {
    pub fn insert(&mut self, card: RateCard) -> Result<(), CardError> {
        let by_date = self.cards.entry(card.currency.clone()).or_default();
        if let Some(existing) = by_date.get(&card.effective_from) {
            return Err(CardError::Duplicate {
                first: existing.source.clone(),
                second: card.source,
                currency: existing.currency.clone(),
                date: existing.effective_from,
            });
        }
        by_date.insert(card.effective_from, card);
        Ok(())
    }

    /// The card in force on a WABA-local date (R6): the latest effective on or before it.
    pub fn card(&self, currency: &str, date: NaiveDate) -> Option<&RateCard> {
        self.cards.get(currency)?.range(..=date).next_back().map(|(_, card)| card)
    }

    pub fn cards(&self) -> impl Iterator<Item = &RateCard> {
        self.cards.values().flat_map(BTreeMap::values)
    }
}
