//! `ledger query …`: the API's questions, against a data directory or a running server.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use ledger_core::LedgerConfig;
use ledger_log::EmbeddedLog;
use ledger_projector::Projector;
use ledger_query::queries::parse_instant;
use ledger_query::{EntryFilter, Queries};
use ledger_server::server::{log_path, state_path};
use ledger_store::{Store, PROJECTOR};
use serde_json::Value;

use crate::config::{PricingArgs, RulesArgs, RulesFile, DEFAULT_DATA_DIR};
use crate::store_ops::stored_rules;

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(subcommand)]
    pub question: Question,
    #[arg(long, global = true, env = "LEDGER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Ask a running server (e.g. http://127.0.0.1:8080) instead of reading the data directory.
    #[arg(long, global = true)]
    pub server: Option<String>,
    /// Print the answer as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub pricing: PricingArgs,
}

/// How `ledger query invoice` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InvoiceFormat {
    Text,
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Question {
    /// What a contact may be sent at an instant, and what each kind of send would cost.
    Eligibility {
        phone_number_id: String,
        user_id: String,
        /// Unix seconds or RFC 3339 [default: now].
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        waba_id: Option<String>,
        /// Answer from the events received up to this instant (audits).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// A contact's snapshot, events and entries.
    Timeline {
        phone_number_id: String,
        user_id: String,
        #[arg(long)]
        waba_id: Option<String>,
    },
    /// Counts by category × market × pricing type for a month in the WABA's time zone.
    Usage {
        waba_id: String,
        /// YYYY-MM.
        #[arg(long)]
        month: String,
        /// Count the events received up to this instant only.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// The WABA's invoice for a month: lines by category × market × pricing type, and totals.
    Invoice {
        waba_id: String,
        /// YYYY-MM, in the WABA's time zone.
        #[arg(long)]
        month: String,
        /// Price the events received up to this instant only.
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long, value_enum, default_value_t = InvoiceFormat::Text)]
        format: InvoiceFormat,
    },
    /// What each Click-to-WhatsApp ad source bought: windows, free messages, charges avoided.
    Attribution {
        waba_id: String,
        /// YYYY-MM [default: every month].
        #[arg(long)]
        month: Option<String>,
    },
    /// Journal entries of an account (--waba-id) or a contact (--phone-number-id, --user-id).
    Entries {
        #[arg(long)]
        waba_id: Option<String>,
        #[arg(long)]
        phone_number_id: Option<String>,
        #[arg(long)]
        user_id: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Why an entry says what it says.
    Explain { entry_id: String },
}

pub fn run(args: &QueryArgs) -> anyhow::Result<()> {
    let answer = match &args.server {
        Some(server) => ask_server(server, &args.question)?,
        None => ask_data_dir(args)?,
    };
    if let Question::Invoice { format, .. } = &args.question {
        match (format, args.json) {
            (InvoiceFormat::Json, _) | (_, true) => println!("{}", serde_json::to_string_pretty(&answer)?),
            (InvoiceFormat::Csv, false) => {
                let invoice: ledger_pricing::Invoice = invoice_of(&answer)?;
                print!("{}", invoice.to_csv());
            }
            (InvoiceFormat::Text, false) => print!("{}", render_invoice(&answer)),
        }
        return Ok(());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", render(&args.question, &answer));
    }
    Ok(())
}

fn ask_data_dir(args: &QueryArgs) -> anyhow::Result<Value> {
    let store = Arc::new(
        Store::open_read_only(&state_path(&args.data_dir))
            .with_context(|| format!("opening the state in {}", args.data_dir.display()))?,
    );
    let pricing = args.pricing.load()?;
    // As-of answers and eligibility fold the log: under the state's own rule settings.
    let config = LedgerConfig {
        rules: stored_rules(&store, args.rules.requested(&RulesFile::default())?)?,
        allowance_limit: None,
    };
    let mut queries = Queries::new(store.clone(), pricing.clone());
    if let Ok(log) = EmbeddedLog::open_read_only(&log_path(&args.data_dir)) {
        queries = queries.with_log(Arc::new(log), config);
    }
    // Eligibility and the timeline are answered from the contact's state under its account's
    // (settings, allowance pools), and finding a phone number's WABA when the question does not
    // name it needs the phone numbers' map: only then start the projector's state from the store.
    let needs_fold = match &args.question {
        // As-of answers fold from the store; only an unnamed WABA needs the phone numbers' map.
        Question::Eligibility { as_of, waba_id, .. } => as_of.is_none() || waba_id.is_none(),
        Question::Timeline { .. } => true,
        Question::Entries { waba_id, phone_number_id, .. } => waba_id.is_none() && phone_number_id.is_some(),
        Question::Usage { .. }
        | Question::Explain { .. }
        | Question::Invoice { .. }
        | Question::Attribution { .. } => false,
    };
    if needs_fold {
        let log = EmbeddedLog::open_read_only(&log_path(&args.data_dir)).context("opening the event log")?;
        let pricing = ledger_server::projection::projection_pricing(pricing);
        let projector = Projector::resume(&log, store, PROJECTOR, config, pricing, &mut |_, _| {})?;
        queries.set_ledger(projector.ledger());
    }
    Ok(match &args.question {
        Question::Eligibility { phone_number_id, user_id, at, waba_id, as_of } => {
            let at = match at {
                Some(text) => parse_instant(text)?,
                None => ledger_server::ingest::now(),
            };
            let waba_id = waba_id.as_deref();
            match as_of {
                Some(as_of) => serde_json::to_value(queries.eligibility_as_of(
                    phone_number_id,
                    user_id,
                    at,
                    waba_id,
                    parse_instant(as_of)?,
                )?)?,
                None => serde_json::to_value(queries.eligibility(phone_number_id, user_id, at, waba_id)?)?,
            }
        }
        Question::Invoice { waba_id, month, as_of, .. } => {
            let as_of = as_of.as_deref().map(parse_instant).transpose()?;
            serde_json::to_value(queries.invoice(waba_id, month, as_of)?)?
        }
        Question::Attribution { waba_id, month } => {
            serde_json::to_value(queries.attribution(waba_id, month.as_deref())?)?
        }
        Question::Timeline { phone_number_id, user_id, waba_id } => {
            serde_json::to_value(queries.timeline(phone_number_id, user_id, waba_id.as_deref())?)?
        }
        Question::Usage { waba_id, month, as_of } => match as_of {
            Some(as_of) => {
                serde_json::to_value(queries.usage_as_of(waba_id, month, parse_instant(as_of)?)?)?
            }
            None => serde_json::to_value(queries.usage(waba_id, month)?)?,
        },
        Question::Entries { waba_id, phone_number_id, user_id, from, to, limit } => {
            let filter = EntryFilter {
                waba_id: waba_id.clone(),
                phone_number_id: phone_number_id.clone(),
                user_id: user_id.clone(),
                from: from.as_deref().map(parse_instant).transpose()?,
                to: to.as_deref().map(parse_instant).transpose()?,
                limit: *limit,
            };
            serde_json::to_value(queries.entries(&filter)?)?
        }
        Question::Explain { entry_id } => serde_json::to_value(queries.explain(entry_id)?)?,
    })
}

fn ask_server(server: &str, question: &Question) -> anyhow::Result<Value> {
    let base = server.trim_end_matches('/');
    let mut query: Vec<(&str, String)> = Vec::new();
    let path = match question {
        Question::Eligibility { phone_number_id, user_id, at, waba_id, as_of } => {
            query.extend(at.clone().map(|v| ("at", v)));
            query.extend(as_of.clone().map(|v| ("as_of", v)));
            query.extend(waba_id.clone().map(|v| ("waba_id", v)));
            format!("/v1/contacts/{phone_number_id}/{user_id}/eligibility")
        }
        Question::Timeline { phone_number_id, user_id, waba_id } => {
            query.extend(waba_id.clone().map(|v| ("waba_id", v)));
            format!("/v1/contacts/{phone_number_id}/{user_id}/timeline")
        }
        Question::Usage { waba_id, month, as_of } => {
            query.push(("month", month.clone()));
            query.extend(as_of.clone().map(|v| ("as_of", v)));
            format!("/v1/accounts/{waba_id}/usage")
        }
        Question::Invoice { waba_id, month, as_of, .. } => {
            query.push(("month", month.clone()));
            query.extend(as_of.clone().map(|v| ("as_of", v)));
            format!("/v1/accounts/{waba_id}/invoice")
        }
        Question::Attribution { waba_id, month } => {
            query.extend(month.clone().map(|v| ("month", v)));
            format!("/v1/accounts/{waba_id}/attribution")
        }
        Question::Entries { waba_id, phone_number_id, user_id, from, to, limit } => {
            for (name, value) in [
                ("waba_id", waba_id.clone()),
                ("phone_number_id", phone_number_id.clone()),
                ("user_id", user_id.clone()),
                ("from", from.clone()),
                ("to", to.clone()),
                ("limit", limit.map(|l| l.to_string())),
            ] {
                query.extend(value.map(|v| (name, v)));
            }
            "/v1/entries".to_owned()
        }
        Question::Explain { entry_id } => format!("/v1/entries/{entry_id}/explain"),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = agent.get(format!("{base}{path}"));
    for (name, value) in &query {
        request = request.query(*name, value);
    }
    let mut response = request.call().with_context(|| format!("asking {base}"))?;
    let status = response.status().as_u16();
    let body: Value = response.body_mut().read_json().context("reading the answer")?;
    if status != 200 {
        bail!("{status}: {}", body.get("reason").and_then(Value::as_str).unwrap_or("(no reason)"));
    }
    Ok(body)
}

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    }
}

fn render(question: &Question, answer: &Value) -> String {
    let mut out = String::new();
    match question {
        Question::Eligibility { .. } => {
            out += &format!("at {} (era {})\n", text(answer, "at"), text(answer, "era"));
            out += &format!(
                "customer service window until: {}\n",
                text(answer, "customer_service_window_until")
            );
            out += &format!("free entry point window until: {}\n", text(answer, "entry_point_window_until"));
            for kind in ["free_form", "marketing", "utility", "authentication"] {
                let preview = &answer[kind];
                out += &format!(
                    "{kind:>15}: {} charge={} opens={} rules={}\n",
                    if preview["allowed"].as_bool().unwrap_or(false) { "allowed" } else { "NOT allowed" },
                    preview.get("charge").map_or("-".to_owned(), Value::to_string),
                    preview.get("opens").map_or("-".to_owned(), |o| text(o, "category")),
                    preview.get("rules").map_or("-".to_owned(), Value::to_string),
                );
            }
        }
        Question::Usage { .. } => {
            out += &format!("{} {} (WABA time zone)\n", text(answer, "waba_id"), text(answer, "month"));
            out += &format!(
                "{:<13} {:<22} {:<8} {:<24} {:>8}\n",
                "unit", "category", "market", "pricing type", "count"
            );
            for row in answer["rows"].as_array().into_iter().flatten() {
                out += &format!(
                    "{:<13} {:<22} {:<8} {:<24} {:>8}\n",
                    text(row, "unit"),
                    text(row, "category"),
                    text(row, "market"),
                    text(row, "pricing_type"),
                    text(row, "count")
                );
            }
            out += &format!(
                "conversations {}, messages {}\n",
                text(answer, "conversations"),
                text(answer, "messages")
            );
        }
        Question::Invoice { .. } => out += &render_invoice(answer),
        Question::Attribution { .. } => {
            out += &format!(
                "{:<24} {:>8} {:>8} {:>9} {:>14} {:<4} {:>8}\n",
                "source_id", "windows", "free", "templates", "avoided", "cur", "unpriced"
            );
            for source in answer.as_array().into_iter().flatten() {
                out += &format!(
                    "{:<24} {:>8} {:>8} {:>9} {:>14} {:<4} {:>8}\n",
                    text(source, "source_id"),
                    text(source, "windows_opened"),
                    text(source, "free_messages"),
                    text(source, "free_templates"),
                    text(source, "avoided"),
                    text(source, "currency"),
                    text(source, "unpriced"),
                );
            }
        }
        Question::Explain { .. } => {
            out += &format!("{}\n", text(answer, "summary"));
            for step in answer["rule_path"].as_array().into_iter().flatten() {
                out += &format!("  {:<5} {}\n", text(step, "rule"), text(step, "says"));
            }
            out += &format!("events: {}\n", answer["events"]);
        }
        Question::Timeline { .. } | Question::Entries { .. } => {
            let entries = match question {
                Question::Timeline { .. } => {
                    out += &format!(
                        "{} events; latest at {}\n",
                        answer["events"].as_array().map_or(0, Vec::len),
                        answer["snapshot"]["latest_event_at"]
                    );
                    answer["entries"].as_array().cloned().unwrap_or_default()
                }
                _ => answer.as_array().cloned().unwrap_or_default(),
            };
            for entry in &entries {
                out += &format!(
                    "{} {:<7} {:<19} {:<22} at {} {} {}\n",
                    text(entry, "id"),
                    text(entry, "action"),
                    text(entry, "kind"),
                    text(entry, "category"),
                    text(entry, "at"),
                    if entry["billable"].as_bool().unwrap_or(false) {
                        "billable".to_owned()
                    } else {
                        format!("free ({})", text(entry, "free_reason"))
                    },
                    text(entry, "pricing_type"),
                );
            }
        }
    }
    out
}

/// An invoice answer (from the store or a server) read back into its type for CSV printing.
fn invoice_of(answer: &Value) -> anyhow::Result<ledger_pricing::Invoice> {
    let lines: Vec<ledger_pricing::InvoiceLine> = serde_json::from_value(answer["lines"].clone())?;
    let totals: ledger_pricing::InvoiceTotals = serde_json::from_value(answer["totals"].clone())?;
    Ok(ledger_pricing::Invoice {
        waba_id: text(answer, "waba_id"),
        month: text(answer, "month"),
        currency: text(answer, "currency"),
        as_of: answer["as_of"].as_str().map(str::to_owned),
        lines,
        totals,
    })
}

fn render_invoice(answer: &Value) -> String {
    let mut out = format!(
        "invoice {} {} ({}){}\n",
        text(answer, "waba_id"),
        text(answer, "month"),
        text(answer, "currency"),
        answer["as_of"].as_str().map(|t| format!(" as of {t}")).unwrap_or_default()
    );
    out += &format!(
        "{:<13} {:<29} {:<22} {:<22} {:<8} {:>7} {:>10} {:>12}  {}\n",
        "unit", "category", "market", "pricing type", "tier", "count", "rate", "amount", "free reason / note"
    );
    for line in answer["lines"].as_array().into_iter().flatten() {
        let provisional = line["provisional"].as_bool() == Some(true);
        let note = match line.get("free_reason").or(line.get("unpriced")).and_then(Value::as_str) {
            Some(note) => note,
            None if provisional => "provisional: the reported cost of a max-price message (R84)",
            None => "",
        };
        out += &format!(
            "{:<13} {:<29} {:<22} {:<22} {:<8} {:>7} {:>10} {:>12}  {}\n",
            text(line, "unit"),
            text(line, "category"),
            text(line, "market"),
            text(line, "pricing_type"),
            text(line, "tier"),
            text(line, "count"),
            text(line, "unit_rate"),
            text(line, "amount"),
            note
        );
    }
    let totals = &answer["totals"];
    out += &format!(
        "total {} {} — {} units, {} charged, {} unpriced\n",
        text(totals, "amount"),
        text(answer, "currency"),
        text(totals, "count"),
        text(totals, "charged"),
        text(totals, "unpriced")
    );
    out
}
