//! Business settings pricing needs beyond the events: portfolios (R54), billing currency (R6)
//! and authentication-international eligibility (R29).
//!
//! Meta announces R29 eligibility by e-mail and in `account_update` webhooks the adapters do not
//! map yet, so it is configuration: a TOML file the operator keeps next to the rate cards.
//!
//! ```toml
//! [[business]]
//! id = "acme"                       # the business portfolio
//! wabas = ["1001", "1002"]
//! currency = "USD"
//! primary_location = "ID"           # ISO 3166 alpha-2; omit while unverified
//! [business.authentication_international]
//! start_time = "2024-06-01T00:00:00Z"
//! exception_countries = { IN = "2024-07-01T00:00:00Z" }
//! ```

use std::collections::BTreeMap;

use ledger_core::Timestamp;
use serde::Deserialize;

/// The currency of WABAs no business lists.
pub const DEFAULT_CURRENCY: &str = "USD";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingSettings {
    #[serde(default)]
    pub business: Vec<BusinessSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessSettings {
    pub id: String,
    pub wabas: Vec<String>,
    #[serde(default = "default_currency")]
    pub currency: String,
    #[serde(default)]
    pub primary_location: Option<String>,
    #[serde(default)]
    pub authentication_international: Option<AuthInternational>,
}

fn default_currency() -> String {
    DEFAULT_CURRENCY.to_owned()
}

/// R29: the business was deemed eligible; the international rate applies from `start_time`
/// (or a country's exception) in every country but the primary location.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthInternational {
    #[serde(deserialize_with = "instant")]
    pub start_time: Timestamp,
    #[serde(default, deserialize_with = "instants")]
    pub exception_countries: BTreeMap<String, Timestamp>,
}

impl AuthInternational {
    pub fn start_for(&self, country: &str) -> Timestamp {
        self.exception_countries.get(country).copied().unwrap_or(self.start_time)
    }
}

fn parse_instant(text: &str) -> Result<Timestamp, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| Timestamp(t.timestamp()))
        .map_err(|e| format!("{text:?} is not an RFC 3339 instant: {e}"))
}

fn instant<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    let text = String::deserialize(d)?;
    parse_instant(&text).map_err(serde::de::Error::custom)
}

fn instants<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Timestamp>, D::Error> {
    let texts = BTreeMap::<String, String>::deserialize(d)?;
    texts
        .into_iter()
        .map(|(country, text)| {
            Ok((country.to_ascii_uppercase(), parse_instant(&text).map_err(serde::de::Error::custom)?))
        })
        .collect()
}

/// Why settings are refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{file}: {source}")]
    Parse { file: String, source: toml::de::Error },
    #[error("{file}: WABA {waba} is listed under both {first} and {second}")]
    TwoBusinesses { file: String, waba: String, first: String, second: String },
    #[error("{file}: business {business}: {reason}")]
    Invalid { file: String, business: String, reason: String },
}

impl PricingSettings {
    pub fn from_toml(file: &str, text: &str) -> Result<PricingSettings, SettingsError> {
        let settings: PricingSettings =
            toml::from_str(text).map_err(|source| SettingsError::Parse { file: file.to_owned(), source })?;
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        for business in &settings.business {
            let invalid = |reason: String| SettingsError::Invalid {
                file: file.to_owned(),
                business: business.id.clone(),
                reason,
            };
            if business.currency.len() != 3 || !business.currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(invalid(format!("currency {:?} is not an ISO 4217 code", business.currency)));
            }
            if let Some(location) = &business.primary_location {
                if location.len() != 2 || !location.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(invalid(format!(
                        "primary_location {location:?} is not an ISO 3166 alpha-2 code"
                    )));
                }
            }
            for waba in &business.wabas {
                if let Some(first) = owner.insert(waba, &business.id) {
                    return Err(SettingsError::TwoBusinesses {
                        file: file.to_owned(),
                        waba: waba.clone(),
                        first: first.to_owned(),
                        second: business.id.clone(),
                    });
                }
            }
        }
        Ok(settings)
    }
}
