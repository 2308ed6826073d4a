//! Rate markets from recipient numbers (R5).
//!
//! The country comes from the number through libphonenumber's metadata (the `phonenumber` crate),
//! which already tells the +1 territories apart by area code (809/829/849 → DO, 658/876 → JM,
//! 787/939 → PR). Countries map to Meta's markets through a dated table (`rates/markets.csv`),
//! because the mapping moves (Zimbabwe joined "Rest of Africa" on 2025-10-01; later dates made
//! countries standalone). Unlisted countries are "Other"; other +1 countries are "North
//! America", as R5 says.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Deserialize;

/// The market for numbers whose country is not listed (R5).
pub const OTHER: &str = "Other";
/// R5: +1 numbers not mapped to a named territory.
pub const NORTH_AMERICA: &str = "North America";
/// What a recipient that is not a phone number (a business-scoped user id) is priced under.
pub const UNKNOWN: &str = "unknown";

/// Where a recipient number was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// ISO 3166-1 alpha-2, when the number parses.
    pub country: Option<String>,
    pub market: String,
}

#[derive(Debug, Deserialize)]
struct MarketRow {
    effective_from: NaiveDate,
    country: String,
    market: String,
}

/// A dated country → market table.
#[derive(Debug, Clone, Default)]
pub struct MarketMap {
    /// Per country, its market from each effective date on (sorted by date).
    by_country: BTreeMap<String, Vec<(NaiveDate, String)>>,
}

/// Why a market table cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error("{source_name} line {line}: {reason}")]
    Row { source_name: String, line: u64, reason: String },
}

impl MarketMap {
    /// Reads `effective_from,country,market` rows; `source_name` names the input in errors.
    pub fn from_csv(source_name: &str, text: &str) -> Result<MarketMap, MarketError> {
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
        let mut map = MarketMap::default();
        for (index, row) in reader.deserialize::<MarketRow>().enumerate() {
            let line = index as u64 + 2;
            let error =
                |reason: String| MarketError::Row { source_name: source_name.to_owned(), line, reason };
            let row = row.map_err(|e| error(e.to_string()))?;
            let country = row.country.to_ascii_uppercase();
            if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(error(format!("country {:?} is not an ISO 3166 alpha-2 code", row.country)));
            }
            if row.market.is_empty() {
                return Err(error(format!("country {country} has an empty market")));
            }
            let dates = map.by_country.entry(country.clone()).or_default();
            if dates.iter().any(|(date, _)| *date == row.effective_from) {
                return Err(error(format!("country {country} is mapped twice from {}", row.effective_from)));
            }
            dates.push((row.effective_from, row.market));
            dates.sort();
        }
        Ok(map)
    }

    /// The market of a country on a date; `None` when the table names none (→ "Other").
    pub fn market_of_country(&self, country: &str, date: NaiveDate) -> Option<&str> {
        let dates = self.by_country.get(country)?;
        dates.iter().rev().find(|(from, _)| *from <= date).map(|(_, market)| market.as_str())
    }

    /// Every market name in force on `date`, "Other" and "North America" included.
    pub fn markets_on(&self, date: NaiveDate) -> BTreeSet<String> {
        let mut markets: BTreeSet<String> = self
            .by_country
            .keys()
            .filter_map(|c| self.market_of_country(c, date))
            .map(str::to_owned)
            .collect();
        markets.insert(OTHER.to_owned());
        markets.insert(NORTH_AMERICA.to_owned());
        markets
    }

    /// The market of a recipient (digits of an E.164 number, with or without `+`) on `date`.
    pub fn locate(&self, recipient: &str, date: NaiveDate) -> Located {
        self.locate_number(parse_number(recipient).as_ref(), date)
    }

    /// The market of an already parsed number on `date` (`None`: not a phone number).
    pub fn locate_number(&self, number: Option<&Number>, date: NaiveDate) -> Located {
        let Some(number) = number else {
            return Located { country: None, market: UNKNOWN.to_owned() };
        };
        // Outside +1, Meta prices by calling code (R5): a territory sharing its code with a
        // larger country (Guernsey's +44 7911…, Kazakhstan's +7 7… before it became a market of
        // its own) takes the market of the code's main country unless the table names it.
        let market = match number.country.as_deref().and_then(|c| self.market_of_country(c, date)) {
            Some(market) => market.to_owned(),
            None if number.calling_code == 1 => NORTH_AMERICA.to_owned(),
            None => number
                .main_country
                .as_deref()
                .and_then(|main| self.market_of_country(main, date).map(str::to_owned))
                .unwrap_or_else(|| OTHER.to_owned()),
        };
        Located { country: number.country.clone(), market }
    }
}

/// What libphonenumber says about a recipient number; dates do not change it, so it can be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    calling_code: u16,
    /// ISO 3166-1 alpha-2 of the number's region, when libphonenumber places it.
    country: Option<String>,
    /// The calling code's main country (e.g. GB for +44).
    main_country: Option<String>,
}

/// Parses a recipient (digits of an E.164 number, with or without `+`); `None` when it is not a
/// phone number (a business-scoped user id, a group id that does not parse).
pub fn parse_number(recipient: &str) -> Option<Number> {
    let digits = recipient.trim().trim_start_matches('+');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = phonenumber::parse(None, format!("+{digits}")).ok()?;
    let calling_code = number.country().code();
    let main_country = phonenumber::metadata::DATABASE
        .by_code(&calling_code)
        .and_then(|regions| regions.first().map(|m| m.id().to_owned()));
    Some(Number {
        calling_code,
        country: number.country().id().map(|id| id.as_ref().to_owned()),
        main_country,
    })
}
