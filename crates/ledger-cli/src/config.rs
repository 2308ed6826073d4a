//! `ledger serve` configuration: a TOML file, overridden by environment variables, overridden
//! by flags. Secrets are read like any other setting and never printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use ledger_pricing::Pricing;
use ledger_query::ingest::Secrets;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./data";

/// The TOML file's shape (see `examples/ledger.toml`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub batch_size: Option<usize>,
    pub era5: Option<bool>,
    /// Rate-card directory (see `rates/SOURCES.md`).
    pub rates: Option<PathBuf>,
    /// Business settings for pricing (TOML, see `examples/pricing.toml`).
    pub pricing: Option<PathBuf>,
    #[serde(default)]
    pub secrets: Secrets,
}

/// Where prices come from; the same for `serve`, `replay`, `audit` and `query` so that they
/// agree.
#[derive(Debug, Clone, Default, Args)]
pub struct PricingArgs {
    /// Rate cards: a directory with markets.csv and <currency>/<date>.csv [default: the bundled cards].
    #[arg(long, global = true, env = "LEDGER_RATES")]
    pub rates: Option<PathBuf>,
    /// Business settings: portfolios, billing currencies, authentication-international (TOML).
    #[arg(long, global = true, env = "LEDGER_PRICING")]
    pub pricing: Option<PathBuf>,
}

impl PricingArgs {
    pub fn load(&self) -> anyhow::Result<Arc<Pricing>> {
        let pricing =
            Pricing::load(self.rates.as_deref(), self.pricing.as_deref()).context("loading pricing")?;
        Ok(Arc::new(pricing))
    }
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "LEDGER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "LEDGER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Where the log and the state live [default: ./data].
    #[arg(long, env = "LEDGER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Most log records per projector batch [default: 8192].
    #[arg(long, env = "LEDGER_BATCH_SIZE")]
    pub batch_size: Option<usize>,
    /// Apply era 5 (paid service messages from 2026-10-01; Q14).
    #[arg(long, env = "LEDGER_ERA5")]
    pub era5: bool,
    #[command(flatten)]
    pub pricing: PricingArgs,
    #[arg(long, env = "LEDGER_META_APP_SECRET", hide_env_values = true)]
    pub meta_app_secret: Option<String>,
    #[arg(long, env = "LEDGER_META_VERIFY_TOKEN", hide_env_values = true)]
    pub meta_verify_token: Option<String>,
    #[arg(long, env = "LEDGER_SINCH_SECRET", hide_env_values = true)]
    pub sinch_secret: Option<String>,
    #[arg(long, env = "LEDGER_SUNSHINE_API_KEY", hide_env_values = true)]
    pub sunshine_api_key: Option<String>,
    #[arg(long, env = "LEDGER_GUPSHUP_API_KEY", hide_env_values = true)]
    pub gupshup_api_key: Option<String>,
}

impl ServeArgs {
    pub fn resolve(&self) -> anyhow::Result<ledger_query::ServeConfig> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let pick = |flag: &Option<String>, file: &Option<String>| flag.clone().or_else(|| file.clone());
        let secrets = Secrets {
            meta_app_secret: pick(&self.meta_app_secret, &file.secrets.meta_app_secret),
            meta_verify_token: pick(&self.meta_verify_token, &file.secrets.meta_verify_token),
            sinch_secret: pick(&self.sinch_secret, &file.secrets.sinch_secret),
            sunshine_api_key: pick(&self.sunshine_api_key, &file.secrets.sunshine_api_key),
            gupshup_api_key: pick(&self.gupshup_api_key, &file.secrets.gupshup_api_key),
        };
        Ok(ledger_query::ServeConfig {
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default")),
            data_dir: self
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            secrets,
            limits: ledger_ingest::Limits::default(),
            ledger: ledger_core::LedgerConfig {
                era5_enabled: self.era5 || file.era5.unwrap_or(false),
                allowance_limit: None,
            },
            batch_size: self.batch_size.or(file.batch_size).unwrap_or(8192),
            pricing: PricingArgs {
                rates: self.pricing.rates.clone().or(file.rates),
                pricing: self.pricing.pricing.clone().or(file.pricing),
            }
            .load()?,
        })
    }
}
