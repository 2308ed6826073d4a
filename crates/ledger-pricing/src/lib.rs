//! Pricing: rate cards by effective date, markets, volume tiers, invoices, reconciliation and ad
//! attribution — turns the core's entries into money (ARCHITECTURE decision 6).
//!
//! Pure: files are read only by [`Pricing::load`]; everything else is functions of entries.

pub mod attribution;
pub mod card;
pub mod invoice;
pub mod market;
pub mod money;
pub mod pricer;
pub mod quote;
pub mod reconcile;
pub mod settings;

use std::collections::HashMap;
use std::path::Path;

pub use card::{CardError, RateBook, RateCard, Tier};
pub use invoice::{Invoice, InvoiceLine, InvoiceTotals};
pub use market::{Located, MarketError, MarketMap};
pub use money::Money;
pub use pricer::{LineKey, PricedEntry, Pricer, StoredTiers, TierChange, TierStateError, ACCRUAL_KEY_PREFIX};
pub use quote::{PricedEligibility, Quote, Quotes};
pub use settings::{BusinessSettings, PricingSettings, SettingsError, DEFAULT_CURRENCY};

/// The bundled market table and USD cards (`rates/` at the repository root).
const BUNDLED_MARKETS: &str = include_str!("../../../rates/markets.csv");
const BUNDLED_CARDS: [(&str, &str); 14] = [
    ("rates/usd/2022-02-01.csv", include_str!("../../../rates/usd/2022-02-01.csv")),
    ("rates/usd/2023-06-01.csv", include_str!("../../../rates/usd/2023-06-01.csv")),
    ("rates/usd/2024-06-01.csv", include_str!("../../../rates/usd/2024-06-01.csv")),
    ("rates/usd/2024-08-01.csv", include_str!("../../../rates/usd/2024-08-01.csv")),
    ("rates/usd/2024-10-01.csv", include_str!("../../../rates/usd/2024-10-01.csv")),
    ("rates/usd/2024-11-01.csv", include_str!("../../../rates/usd/2024-11-01.csv")),
    ("rates/usd/2025-02-01.csv", include_str!("../../../rates/usd/2025-02-01.csv")),
    ("rates/usd/2025-04-01.csv", include_str!("../../../rates/usd/2025-04-01.csv")),
    ("rates/usd/2025-07-01.csv", include_str!("../../../rates/usd/2025-07-01.csv")),
    ("rates/usd/2025-10-01.csv", include_str!("../../../rates/usd/2025-10-01.csv")),
    ("rates/usd/2026-01-01.csv", include_str!("../../../rates/usd/2026-01-01.csv")),
    ("rates/usd/2026-04-01.csv", include_str!("../../../rates/usd/2026-04-01.csv")),
    ("rates/usd/2026-07-01.csv", include_str!("../../../rates/usd/2026-07-01.csv")),
    ("rates/usd/2026-10-01.csv", include_str!("../../../rates/usd/2026-10-01.csv")),
];

/// Rate cards, markets and business settings: everything prices depend on besides entries.
#[derive(Debug, Clone)]
pub struct Pricing {
    pub book: RateBook,
    pub markets: MarketMap,
    pub settings: PricingSettings,
    business_of_waba: HashMap<String, usize>,
}

/// Why pricing inputs cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    #[error(transparent)]
    Market(#[from] MarketError),
    #[error(transparent)]
    Card(#[from] CardError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl Pricing {
    pub fn new(
        markets: MarketMap,
        cards: Vec<RateCard>,
        settings: PricingSettings,
    ) -> Result<Pricing, PricingError> {
        let mut book = RateBook::default();
        for card in cards {
            book.insert(card)?;
        }
        let business_of_waba = settings
            .business
            .iter()
            .enumerate()
            .flat_map(|(index, b)| b.wabas.iter().map(move |w| (w.clone(), index)))
            .collect();
        Ok(Pricing { book, markets, settings, business_of_waba })
    }

    /// The cards and market table shipped with the ledger, no business settings.
    pub fn bundled() -> Pricing {
        let markets = MarketMap::from_csv("rates/markets.csv", BUNDLED_MARKETS)
            .expect("the bundled market table is valid");
        let cards = BUNDLED_CARDS
            .iter()
            .map(|(file, text)| {
                RateCard::from_csv(file, text, &markets).expect("the bundled cards are valid")
            })
            .collect();
        Pricing::new(markets, cards, PricingSettings::default()).expect("the bundled cards are distinct")
    }

    /// Loads `rates_dir/markets.csv` and every `rates_dir/<currency>/*.csv` card (or the bundled
    /// ones when `rates_dir` is `None`), and business settings from `settings_file`.
    pub fn load(rates_dir: Option<&Path>, settings_file: Option<&Path>) -> Result<Pricing, PricingError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map_err(|source| PricingError::Io { path: path.display().to_string(), source })
        };
        let settings = match settings_file {
            Some(path) => PricingSettings::from_toml(&path.display().to_string(), &read(path)?)?,
            None => PricingSettings::default(),
        };
        let Some(dir) = rates_dir else {
            let bundled = Pricing::bundled();
            return Pricing::new(bundled.markets, bundled.book.cards().cloned().collect(), settings);
        };
        let markets_path = dir.join("markets.csv");
        let markets = MarketMap::from_csv(&markets_path.display().to_string(), &read(&markets_path)?)?;
        let mut files = Vec::new();
        let entries = std::fs::read_dir(dir)
            .map_err(|source| PricingError::Io { path: dir.display().to_string(), source })?;
        for entry in entries.flatten() {
            if !entry.path().is_dir() {
                continue;
            }
            let currency_dir = entry.path();
            let cards = std::fs::read_dir(&currency_dir)
                .map_err(|source| PricingError::Io { path: currency_dir.display().to_string(), source })?;
            for card in cards.flatten() {
                if card.path().extension().is_some_and(|e| e == "csv") {
                    files.push(card.path());
                }
            }
        }
        files.sort();
        let mut cards = Vec::with_capacity(files.len());
        for file in files {
            cards.push(RateCard::from_csv(&file.display().to_string(), &read(&file)?, &markets)?);
        }
        Pricing::new(markets, cards, settings)
    }

    /// The WABA's portfolio, billing currency and settings; a WABA no business lists is its own
    /// portfolio, billed in USD.
    pub fn business_of<'a>(&'a self, waba_id: &'a str) -> (&'a str, &'a str, Option<&'a BusinessSettings>) {
        match self.business_of_waba.get(waba_id).map(|&i| &self.settings.business[i]) {
            Some(business) => (&business.id, &business.currency, Some(business)),
            None => (waba_id, DEFAULT_CURRENCY, None),
        }
    }
}
