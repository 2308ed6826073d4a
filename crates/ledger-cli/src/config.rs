//! `ledger serve` configuration: a TOML file, overridden by environment variables, overridden
//! by flags. Secrets are read like any other setting and never printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use ledger_core::{AllowanceScope, RuleSettings};
use ledger_pricing::Pricing;
use ledger_server::ingest::Secrets;
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
    /// Megabytes of contacts kept in memory in front of their stored states.
    pub state_cache_mb: Option<usize>,
    /// The `[rules]` table: rule settings (R80, R82).
    #[serde(default)]
    pub rules: RulesFile,
    /// Rate-card directory (see `rates/SOURCES.md`).
    pub rates: Option<PathBuf>,
    /// Business settings for pricing (TOML, see `examples/pricing.toml`).
    pub pricing: Option<PathBuf>,
    #[serde(default)]
    pub secrets: Secrets,
    /// `[[api_tokens]]`: who may read which answers (none: queries only from loopback).
    #[serde(default)]
    pub api_tokens: Vec<ApiTokenFile>,
    /// `[limits]`: connections, expensive answers, dead letters.
    #[serde(default)]
    pub limits: LimitsFile,
    /// Kafka mode (`ledger ingest`, `ledger project`).
    #[serde(default)]
    pub kafka: KafkaFileConfig,
}

/// One `[[api_tokens]]` entry. The token itself comes from the environment variable `token_env`
/// names or the file `token_file` names (a mounted secret), never from this file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTokenFile {
    pub name: String,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// WABA ids the token may read; `"*"` for all.
    #[serde(default)]
    pub wabas: Vec<String>,
    #[serde(default)]
    pub dead_letters: bool,
    #[serde(default)]
    pub dead_letter_bodies: bool,
    #[serde(default)]
    pub metrics: bool,
}

/// The `[limits]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub max_connections: Option<usize>,
    pub header_read_timeout_seconds: Option<u64>,
    pub expensive_queries: Option<usize>,
    pub dead_letters_total_mib: Option<u64>,
    pub dead_letters_per_source_mib: Option<u64>,
}

/// Reads the API tokens of `[[api_tokens]]`, each from its variable or file.
pub fn api_tokens_from(
    entries: &[ApiTokenFile],
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<ledger_server::access::Access> {
    use ledger_server::access::{Access, ApiToken, Scope, Wabas};
    let mut tokens = Vec::with_capacity(entries.len());
    for entry in entries {
        let secret = match (&entry.token_env, &entry.token_file) {
            (Some(var), None) => env(var).with_context(|| {
                format!("API token {:?}: the variable {var} it names is not set", entry.name)
            })?,
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("API token {:?}: reading {}", entry.name, path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            _ => anyhow::bail!("API token {:?}: give exactly one of token_env and token_file", entry.name),
        };
        let wabas = if entry.wabas.iter().any(|w| w == "*") {
            Wabas::All
        } else {
            Wabas::Only(entry.wabas.iter().cloned().collect())
        };
        tokens.push(ApiToken {
            name: entry.name.clone(),
            secret,
            scope: Scope {
                wabas,
                dead_letters: entry.dead_letters || entry.dead_letter_bodies,
                dead_letter_bodies: entry.dead_letter_bodies,
                metrics: entry.metrics,
            },
        });
    }
    Ok(Access::new(tokens)?)
}

/// The `[rules]` table: the points the spec leaves open, as dated settings (R80, R82, Q14).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    pub fep_window_hours_from_2026_09_28: Option<u32>,
    pub service_allowance_scope: Option<AllowanceScope>,
}

/// Rule settings by flag (over the `[rules]` table). When none is given a command uses the
/// settings its data directory recorded, or the defaults for a new one; when one is given it
/// must equal the recorded settings (see `--refold`).
#[derive(Debug, Clone, Default, Args)]
pub struct RulesArgs {
    /// R82: free entry point window length, in hours, for windows opened from 2026-09-28
    /// (72 to 168) [default: 72].
    #[arg(long, global = true, env = "LEDGER_FEP_WINDOW_HOURS_FROM_2026_09_28")]
    pub fep_window_hours_from_2026_09_28: Option<u32>,
    /// R80: who shares the 1,000 free service messages a month [default: phone_number].
    #[arg(long, global = true, env = "LEDGER_SERVICE_ALLOWANCE_SCOPE", value_parser = parse_scope)]
    pub service_allowance_scope: Option<AllowanceScope>,
}

fn parse_scope(text: &str) -> Result<AllowanceScope, String> {
    match text {
        "phone_number" => Ok(AllowanceScope::PhoneNumber),
        "waba" => Ok(AllowanceScope::Waba),
        other => Err(format!("{other:?} is not a scope: phone_number or waba")),
    }
}

impl RulesArgs {
    /// The settings asked for, if any were: the defaults overridden by the file, then the flags.
    pub fn requested(&self, file: &RulesFile) -> anyhow::Result<Option<RuleSettings>> {
        let hours = self.fep_window_hours_from_2026_09_28.or(file.fep_window_hours_from_2026_09_28);
        let scope = self.service_allowance_scope.or(file.service_allowance_scope);
        if hours.is_none() && scope.is_none() {
            return Ok(None);
        }
        let defaults = RuleSettings::default();
        let settings = RuleSettings {
            fep_window_hours_from_2026_09_28: hours.unwrap_or(defaults.fep_window_hours_from_2026_09_28),
            service_allowance_scope: scope.unwrap_or(defaults.service_allowance_scope),
        };
        settings.validate()?;
        Ok(Some(settings))
    }

    /// For commands that fold a file rather than a data directory: the settings asked for, or
    /// the defaults.
    pub fn settings(&self) -> anyhow::Result<RuleSettings> {
        Ok(self.requested(&RulesFile::default())?.unwrap_or_default())
    }
}

/// The `[kafka]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaFileConfig {
    pub brokers: Option<String>,
    pub topic: Option<String>,
    pub entries_topic: Option<String>,
    pub group_id: Option<String>,
    /// Base URLs of the other projector members, for forwarded contact questions and
    /// account-wide usage.
    #[serde(default)]
    pub peers: Vec<String>,
    pub delivery_timeout_ms: Option<u64>,
    /// Further librdkafka properties (e.g. `"security.protocol" = "SSL"`).
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
}

/// Where Kafka is and which topics and group to use; flags override the `[kafka]` table.
#[derive(Debug, Clone, Default, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (host:port,...).
    #[arg(long, env = "LEDGER_KAFKA_BROKERS")]
    pub brokers: Option<String>,
    /// Events topic [default: ledger.events.v1].
    #[arg(long, env = "LEDGER_KAFKA_TOPIC")]
    pub topic: Option<String>,
    /// Derived entries topic [default: ledger.entries.v1].
    #[arg(long, env = "LEDGER_KAFKA_ENTRIES_TOPIC")]
    pub entries_topic: Option<String>,
    /// Projector consumer group [default: ledger-projector].
    #[arg(long, env = "LEDGER_KAFKA_GROUP")]
    pub group_id: Option<String>,
    /// Other projector members' base URLs (repeat or comma-separate).
    #[arg(long, env = "LEDGER_PEERS", value_delimiter = ',')]
    pub peers: Vec<String>,
}

/// Kafka mode's resolved settings.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub options: ledger_log::KafkaOptions,
    pub entries_topic: String,
    pub group_id: String,
    pub peers: Vec<String>,
}

impl KafkaArgs {
    pub fn resolve(&self, file: &KafkaFileConfig) -> anyhow::Result<KafkaSettings> {
        let brokers = self.brokers.clone().or_else(|| file.brokers.clone()).ok_or_else(|| {
            anyhow::anyhow!("Kafka brokers are required: --brokers, LEDGER_KAFKA_BROKERS or [kafka] brokers")
        })?;
        let mut options = ledger_log::KafkaOptions::new(brokers);
        if let Some(topic) = self.topic.clone().or_else(|| file.topic.clone()) {
            options.topic = topic;
        }
        if let Some(ms) = file.delivery_timeout_ms {
            options.delivery_timeout = std::time::Duration::from_millis(ms);
        }
        options.extra = file.properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(KafkaSettings {
            options,
            entries_topic: self
                .entries_topic
                .clone()
                .or_else(|| file.entries_topic.clone())
                .unwrap_or_else(|| ledger_log::ENTRIES_TOPIC.to_owned()),
            group_id: self
                .group_id
                .clone()
                .or_else(|| file.group_id.clone())
                .unwrap_or_else(|| "ledger-projector".to_owned()),
            peers: if self.peers.is_empty() { file.peers.clone() } else { self.peers.clone() },
        })
    }
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
    /// Megabytes of contacts the projector keeps in memory in front of their stored states;
    /// the rest are loaded from RocksDB when an event needs them [default: 256].
    #[arg(long, env = "LEDGER_STATE_CACHE_MB")]
    pub state_cache_mb: Option<usize>,
    #[command(flatten)]
    pub rules: RulesArgs,
    /// When the data directory was folded under other rule settings, re-fold its state from
    /// the log under these (the old state is kept beside it) instead of refusing.
    #[arg(long)]
    pub refold: bool,
    #[command(flatten)]
    pub pricing: PricingArgs,
}

/// Reads the webhook secrets: each from its environment variable (`LEDGER_META_APP_SECRET` …),
/// or the file its `…_FILE` variable names (a mounted Kubernetes secret), over the `[secrets]`
/// table. Never from flags: a command line is visible to every user of the machine (`ps`).
pub fn secrets_from(file: &Secrets, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Secrets> {
    let read = |var: &str, from_file: &Option<String>| -> anyhow::Result<Option<String>> {
        if let Some(value) = env(var) {
            return Ok(Some(value));
        }
        let file_var = format!("{var}_FILE");
        if let Some(path) = env(&file_var) {
            let text =
                std::fs::read_to_string(&path).with_context(|| format!("reading {file_var} ({path})"))?;
            return Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()));
        }
        Ok(from_file.clone())
    };
    let secrets = Secrets {
        meta_app_secret: read("LEDGER_META_APP_SECRET", &file.meta_app_secret)?,
        meta_verify_token: read("LEDGER_META_VERIFY_TOKEN", &file.meta_verify_token)?,
        sinch_secret: read("LEDGER_SINCH_SECRET", &file.sinch_secret)?,
        sunshine_api_key: read("LEDGER_SUNSHINE_API_KEY", &file.sunshine_api_key)?,
        gupshup_api_key: read("LEDGER_GUPSHUP_API_KEY", &file.gupshup_api_key)?,
        sends_token: read("LEDGER_SENDS_TOKEN", &file.sends_token)?,
        sinch_timestamp_window_seconds: file.sinch_timestamp_window_seconds,
        meta_format_relays: file.meta_format_relays.clone(),
    };
    secrets.validate()?;
    Ok(secrets)
}

impl ServeArgs {
    pub fn file(&self) -> anyhow::Result<FileConfig> {
        match &self.config {
            Some(path) => FileConfig::load(path),
            None => Ok(FileConfig::default()),
        }
    }

    pub fn resolve(&self) -> anyhow::Result<ledger_server::ServeConfig> {
        let file = self.file()?;
        let secrets = secrets_from(&file.secrets, &|var| std::env::var(var).ok())?;
        let access = api_tokens_from(&file.api_tokens, &|var| std::env::var(var).ok())?;
        let listen =
            self.listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
        if !listen.ip().is_loopback() && secrets.sends_token.is_none() {
            anyhow::bail!(
                "listening on {listen} with no sends token: anyone who reaches the port could post send \
                 records that reclassify charges. Set LEDGER_SENDS_TOKEN (or LEDGER_SENDS_TOKEN_FILE), or \
                 listen on loopback"
            );
        }
        let batch_size =
            self.batch_size.or(file.batch_size).unwrap_or(ledger_server::server::DEFAULT_BATCH_SIZE);
        if batch_size == 0 {
            anyhow::bail!(
                "batch_size 0 would project nothing: give at least 1 (default {})",
                ledger_server::server::DEFAULT_BATCH_SIZE
            );
        }
        Ok(ledger_server::ServeConfig {
            listen,
            data_dir: self
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            secrets,
            limits: ledger_ingest::Limits::default(),
            ledger: ledger_core::LedgerConfig {
                rules: self.rules.requested(&file.rules)?.unwrap_or_default(),
                allowance_limit: None,
            },
            batch_size,
            state_cache_bytes: self
                .state_cache_mb
                .or(file.state_cache_mb)
                .map_or(ledger_projector::DEFAULT_STATE_CACHE_BYTES, |mb| mb.saturating_mul(1 << 20)),
            pricing: PricingArgs {
                rates: self.pricing.rates.clone().or(file.rates),
                pricing: self.pricing.pricing.clone().or(file.pricing),
            }
            .load()?,
            access,
            ..limits_from(&file.limits, listen)?
        })
    }
}

/// The `[limits]` table over the defaults, in a [`ledger_server::ServeConfig`] to take the rest of.
pub fn limits_from(file: &LimitsFile, listen: SocketAddr) -> anyhow::Result<ledger_server::ServeConfig> {
    let mut config = ledger_server::ServeConfig::new(listen, PathBuf::new());
    if let Some(n) = file.max_connections {
        anyhow::ensure!(n > 0, "[limits] max_connections must be at least 1");
        config.connections.max_connections = n;
    }
    if let Some(seconds) = file.header_read_timeout_seconds {
        anyhow::ensure!(seconds > 0, "[limits] header_read_timeout_seconds must be at least 1");
        config.connections.header_read_timeout = std::time::Duration::from_secs(seconds);
    }
    if let Some(n) = file.expensive_queries {
        anyhow::ensure!(n > 0, "[limits] expensive_queries must be at least 1");
        config.expensive_queries = n;
    }
    const MIB: u64 = 1024 * 1024;
    if let Some(mib) = file.dead_letters_total_mib {
        config.dead_letter_caps.total_bytes = mib * MIB;
    }
    if let Some(mib) = file.dead_letters_per_source_mib {
        config.dead_letter_caps.per_source_bytes = mib * MIB;
    }
    let caps = config.dead_letter_caps;
    anyhow::ensure!(
        caps.per_source_bytes > 0 && caps.per_source_bytes <= caps.total_bytes,
        "[limits] dead_letters_per_source_mib must be at least 1 and at most dead_letters_total_mib"
    );
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The deployment example is a configuration `ledger ingest` / `ledger project` accept.
    #[test]
    fn the_deploy_example_config_parses_and_resolves() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/ledger-kafka.toml");
        let file = FileConfig::load(&path).expect("deploy/ledger-kafka.toml parses");
        let kafka = KafkaArgs::default().resolve(&file.kafka).expect("resolves");
        assert_eq!(kafka.options.brokers, "kafka:9092");
        assert_eq!(kafka.options.topic, ledger_log::EVENTS_TOPIC);
        assert_eq!(kafka.entries_topic, ledger_log::ENTRIES_TOPIC);
        assert_eq!(kafka.group_id, "ledger-projector");
        assert_eq!(kafka.options.delivery_timeout, std::time::Duration::from_secs(10));
        assert_eq!(kafka.peers.len(), 2);
        assert!(kafka.options.extra.iter().any(|(k, v)| k == "client.id" && v == "ledger"));
        // The producer settings the log's guarantees rest on survive the extra properties.
        let producer = kafka.options.producer_config();
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("partitioner"), Some("murmur2_random"));
    }

    #[test]
    fn the_example_config_states_the_default_rule_settings() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ledger.toml");
        let file = FileConfig::load(&path).expect("examples/ledger.toml parses");
        let requested = RulesArgs::default().requested(&file.rules).expect("valid");
        assert_eq!(requested, Some(RuleSettings::default()));
        // A flag overrides the table; a value outside R82's bounds is refused with its reason.
        let flags = RulesArgs { fep_window_hours_from_2026_09_28: Some(200), ..RulesArgs::default() };
        let error = flags.requested(&file.rules).expect_err("out of bounds");
        assert!(error.to_string().contains("R82"), "{error}");
    }

    fn serve_args(args: &[&str]) -> ServeArgs {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Cli::parse_from(std::iter::once("ledger").chain(args.iter().copied())).serve
    }

    #[test]
    fn settings_that_cannot_work_refuse_to_start() {
        let error = serve_args(&["--batch-size", "0"]).resolve().expect_err("batch size 0");
        assert!(error.to_string().contains("batch_size 0"), "{error}");
        // Send records reclassify charges: beyond loopback they need a token.
        let error = serve_args(&["--listen", "0.0.0.0:8080"]).resolve().expect_err("open sends");
        assert!(error.to_string().contains("LEDGER_SENDS_TOKEN"), "{error}");
        assert!(serve_args(&["--listen", "127.0.0.1:8080"]).resolve().is_ok());
        // An empty or short secret would accept forged signatures: refused, naming the secret.
        for weak in ["", "   ", "app-secret"] {
            let env = |var: &str| (var == "LEDGER_META_APP_SECRET").then(|| weak.to_owned());
            let error = secrets_from(&Secrets::default(), &env).expect_err("weak secret");
            assert!(error.to_string().contains("meta_app_secret"), "{error}");
        }
        // A secret file (a mounted Kubernetes secret) is read, its trailing newline dropped; the
        // variable wins over the `[secrets]` table.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sinch");
        std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").expect("write");
        let path = path.display().to_string();
        let env = |var: &str| (var == "LEDGER_SINCH_SECRET_FILE").then(|| path.clone());
        let table = Secrets { sinch_secret: Some("from-the-table-0123456789".into()), ..Secrets::default() };
        let secrets = secrets_from(&table, &env).expect("strong secret");
        assert_eq!(secrets.sinch_secret.as_deref(), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(secrets_from(&table, &|_| None).expect("table").sinch_secret, table.sinch_secret);
    }

    /// The production example parses, names its tokens by file, and the Kubernetes ConfigMap
    /// carries it unchanged.
    #[test]
    fn the_production_config_reads_tokens_from_files_and_matches_the_configmap() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let file = FileConfig::load(&root.join("deploy/ledger-production.toml")).expect("parses");
        assert!(file.api_tokens.iter().all(|t| t.token_file.is_some() && t.token_env.is_none()));
        // Without the mounted files it refuses to start, naming the file.
        let error = api_tokens_from(&file.api_tokens, &|_| None).expect_err("no token files here");
        assert!(format!("{error:#}").contains("/run/secrets/ledger/tokens/"), "{error:#}");
        // With them, each token gets its scope.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut entries = file.api_tokens.clone();
        for entry in &mut entries {
            let path = dir.path().join(&entry.name);
            std::fs::write(&path, format!("{}-token-0123456789abcdef\n", entry.name)).expect("write");
            entry.token_file = Some(path);
        }
        let access = api_tokens_from(&entries, &|_| None).expect("tokens");
        let peer = Some("10.0.0.7:5000".parse().expect("addr"));
        let ops = access.authorize(Some("Bearer operations-token-0123456789abcdef"), peer).expect("ops");
        assert!(ops.scope.dead_letters && ops.scope.metrics && !ops.scope.dead_letter_bodies);
        assert!(access.authorize(None, peer).is_err());
        assert!(limits_from(&file.limits, DEFAULT_LISTEN.parse().expect("addr")).is_ok());
        secrets_from(&file.secrets, &|var| {
            var.starts_with("LEDGER_GUPSHUP_API_KEY").then(|| "gupshup-key-0123456789".to_owned())
        })
        .expect("the relay is authenticated");
        let error = secrets_from(&file.secrets, &|_| None).expect_err("a relay without its key");
        assert!(error.to_string().contains("meta_format_relays"), "{error}");

        let configmap = std::fs::read_to_string(root.join("deploy/kubernetes/configmap.yaml")).expect("read");
        let embedded: String = configmap
            .split_once("ledger.toml: |\n")
            .expect("the ConfigMap embeds ledger.toml")
            .1
            .lines()
            .map(|line| line.strip_prefix("    ").unwrap_or(line))
            .map(|line| format!("{line}\n"))
            .collect();
        let production = std::fs::read_to_string(root.join("deploy/ledger-production.toml")).expect("read");
        assert_eq!(embedded, production, "deploy/kubernetes/configmap.yaml carries ledger-production.toml");
    }

    #[test]
    fn kafka_mode_without_brokers_is_refused_with_a_reason() {
        let error = KafkaArgs::default().resolve(&KafkaFileConfig::default()).expect_err("no brokers");
        assert!(error.to_string().contains("--brokers"), "{error}");
    }
}
