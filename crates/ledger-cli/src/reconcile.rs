//! `ledger reconcile`: our classification against the provider's, per message and per period.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use ledger_core::LedgerConfig;
use ledger_log::EmbeddedLog;
use ledger_pricing::reconcile::Tolerance;
use ledger_query::Queries;
use ledger_server::server::{log_path, state_path};
use ledger_store::Store;
use serde_json::Value;

use crate::config::{PricingArgs, RulesArgs, RulesFile, DEFAULT_DATA_DIR};
use crate::store_ops::stored_rules;

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    pub waba_id: String,
    /// Only messages delivered in this month of the WABA's time zone (YYYY-MM).
    #[arg(long)]
    pub month: Option<String>,
    /// A saved `conversation_analytics` or `pricing_analytics` response (JSON) to compare.
    #[arg(long)]
    pub analytics: Option<PathBuf>,
    /// A period row differs when it is off by more than this percentage of Meta's figure …
    #[arg(long, default_value_t = 1.0)]
    pub tolerance_percent: f64,
    /// … and by more than this many units; also the number of disagreeing messages accepted.
    #[arg(long, default_value_t = 0)]
    pub tolerance_count: i64,
    #[arg(long, env = "LEDGER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Ask a running server instead of reading the data directory.
    #[arg(long)]
    pub server: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub pricing: PricingArgs,
}

/// Prints the report; `Ok(false)` when differences exceed the tolerance.
pub fn run(args: &ReconcileArgs) -> anyhow::Result<bool> {
    let analytics = args
        .analytics
        .as_ref()
        .map(|path| std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display())))
        .transpose()?;
    let tolerance = Tolerance { count: args.tolerance_count, percent: args.tolerance_percent };
    let report: Value = match &args.server {
        Some(server) => ask_server(server, args, analytics.as_deref())?,
        None => {
            let store = Arc::new(
                Store::open_read_only(&state_path(&args.data_dir))
                    .with_context(|| format!("opening the state in {}", args.data_dir.display()))?,
            );
            let log =
                EmbeddedLog::open_read_only(&log_path(&args.data_dir)).context("opening the event log")?;
            let rules = stored_rules(&store, args.rules.requested(&RulesFile::default())?)?;
            let config = LedgerConfig { rules, allowance_limit: None };
            let queries = Queries::new(store, args.pricing.load()?).with_log(Arc::new(log), config);
            serde_json::to_value(queries.reconcile(
                &args.waba_id,
                args.month.as_deref(),
                analytics.as_deref(),
                tolerance,
            )?)?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(report["within_tolerance"].as_bool().unwrap_or(false))
}

fn ask_server(server: &str, args: &ReconcileArgs, analytics: Option<&str>) -> anyhow::Result<Value> {
    let base = server.trim_end_matches('/');
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = agent
        .post(format!("{base}/v1/accounts/{}/reconcile", args.waba_id))
        .query("tolerance_percent", args.tolerance_percent.to_string())
        .query("tolerance_count", args.tolerance_count.to_string());
    if let Some(month) = &args.month {
        request = request.query("month", month);
    }
    let mut response = request
        .header("content-type", "application/json")
        .send(analytics.unwrap_or(""))
        .with_context(|| format!("asking {base}"))?;
    let status = response.status().as_u16();
    let body: Value = response.body_mut().read_json().context("reading the answer")?;
    if status != 200 {
        bail!("{status}: {}", body.get("reason").and_then(Value::as_str).unwrap_or("(no reason)"));
    }
    Ok(body)
}

fn render(report: &Value) -> String {
    let messages = &report["messages"];
    let mut out = format!(
        "messages: {} compared, {} agree, {} differences\n",
        messages["compared"],
        messages["agreeing"],
        messages["differences"].as_array().map_or(0, Vec::len)
    );
    for d in messages["differences"].as_array().into_iter().flatten() {
        out += &format!(
            "  {} at {}: {} ours={} reported={} — {}\n",
            d["message_id"].as_str().unwrap_or(""),
            d["delivered_at"].as_str().unwrap_or(""),
            d["field"].as_str().unwrap_or(""),
            d["ours"].as_str().unwrap_or(""),
            d["reported"].as_str().unwrap_or(""),
            d["explanation"].as_str().unwrap_or("")
        );
        for rule in d["rules"].as_array().into_iter().flatten() {
            out += &format!("      {}\n", rule.as_str().unwrap_or(""));
        }
    }
    if let Some(period) = report.get("period") {
        out += &format!(
            "{}: {} data points, {} beyond tolerance ({}% / {} units)\n",
            period["kind"].as_str().unwrap_or(""),
            period["rows"].as_array().map_or(0, Vec::len),
            period["differences"],
            period["tolerance"]["percent"],
            period["tolerance"]["count"]
        );
        for row in period["rows"].as_array().into_iter().flatten() {
            out += &format!(
                "  {} [{}, {}) {}: theirs {} ours {}{}\n",
                if row["exceeds_tolerance"].as_bool().unwrap_or(false) { "DIFF" } else { "ok  " },
                row["start"],
                row["end"],
                row["dimensions"],
                row["theirs"],
                row["ours"],
                row.get("their_cost")
                    .map(|c| format!(", cost theirs {c} ours {}", row["our_cost"]))
                    .unwrap_or_default()
            );
        }
    }
    let tiers = &report["tiers"];
    if let Some(rows) = tiers["rows"].as_array().filter(|rows| !rows.is_empty()) {
        out += &format!("volume tiers (R55): {} announced, {} differ\n", rows.len(), tiers["differences"]);
        for row in rows {
            out += &format!(
                "  {} {} {} tier {} in {}: Meta at {}, ours at {} ({} charges){}\n",
                if row["agrees"].as_bool().unwrap_or(false) { "ok  " } else { "DIFF" },
                row["pricing_category"].as_str().unwrap_or(""),
                row["region"].as_str().unwrap_or(""),
                row["tier"].as_str().unwrap_or(""),
                row["effective_month"].as_str().unwrap_or(""),
                row["reported_at"],
                row.get("ours_reached_at").map_or("never".to_owned(), Value::to_string),
                row["ours_count"],
                row.get("reason").and_then(Value::as_str).map(|r| format!(" — {r}")).unwrap_or_default()
            );
        }
    }
    out += if report["within_tolerance"].as_bool().unwrap_or(false) {
        "within tolerance\n"
    } else {
        "DIFFERENCES beyond tolerance\n"
    };
    out
}
