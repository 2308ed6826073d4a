//! Reconciliation against what the provider said.
//!
//! Per message: our classification against the pricing a status webhook reported (category,
//! type, billable), every disagreement carrying our rule path. Per period: our counts and
//! amounts against Meta's `conversation_analytics` / `pricing_analytics` data points (spec §5,
//! §5.4). Buckets are aligned by the data points' own `[start, end)` instants, so whichever time
//! zone Meta aligned them to (Q16), both sides cover the same instants. Per tier change: Meta's
//! `VOLUME_BASED_PRICING_TIER_UPDATE` webhooks (R55) against the ledger's own accrual (R54).

use std::collections::{BTreeMap, HashMap};

use ledger_core::fact::Fact;
use ledger_core::{explain, Entry, EntryAction, LocalMonth, PricingCategory, PricingModel};
use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::pricer::{Accrual, Pricer};

/// One message whose reported pricing differs from ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageDifference {
    pub message_id: String,
    pub entry_id: String,
    pub delivered_at: String,
    /// `category`, `pricing_type` or `billable`.
    pub field: String,
    pub ours: String,
    pub reported: String,
    /// Our conclusion and the rules that produced it.
    pub explanation: String,
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageReport {
    /// Messages with a reported outcome that were compared.
    pub compared: usize,
    pub agreeing: usize,
    pub differences: Vec<MessageDifference>,
}

/// Compares every live message entry that carries a provider report. `live` must be the
/// entries standing after reversals; `pricer` decides authentication-international (R29).
pub fn reconcile_messages(live: &[Entry], pricer: &mut Pricer) -> MessageReport {
    let mut report = MessageReport { compared: 0, agreeing: 0, differences: Vec::new() };
    let mut sorted: Vec<&Entry> = live.iter().filter(|e| e.action == EntryAction::Post).collect();
    sorted.sort_by_key(|e| (e.fact.at(), e.id));
    for entry in sorted {
        let Fact::MessageBilled(message) = &*entry.fact else { continue };
        let Some(reported) = message.reported.as_deref().filter(|r| r.has_outcome()) else { continue };
        report.compared += 1;
        let cbp = message.pricing_model == PricingModel::Cbp;
        // The category we bill under: pricing may turn authentication into its international rate.
        let ours_category = match &*entry.fact {
            Fact::MessageBilled(m) if !cbp && entry.billable => {
                pricer.rate_category(&entry.fact).unwrap_or_else(|| m.category.as_str().to_owned())
            }
            _ => message.category.as_str().to_owned(),
        };
        let mut fields: Vec<(&str, String, String)> = Vec::new();
        let reported_category = reported.category.as_ref().or(reported.conversation_origin.as_ref());
        if let Some(category) = reported_category {
            // Q8: the entry point category is compared through the pricing type instead.
            let entry_point =
                category.as_str() == "referral_conversion" || ours_category == "referral_conversion";
            if !entry_point && category.as_str() != ours_category {
                fields.push(("category", ours_category.clone(), category.as_str().to_owned()));
            }
        }
        if let (Some(theirs), Some(ours)) = (reported.pricing_type, entry.pricing_type) {
            if theirs != ours {
                fields.push(("pricing_type", ours.as_str().to_owned(), theirs.as_str().to_owned()));
            }
        }
        if let Some(theirs) = reported.billable {
            // CBP webhooks say billable for every message of a charged conversation, free tier
            // included; only entry point conversations are not (R15, R27).
            let ours = if cbp { ours_category != "referral_conversion" } else { entry.billable };
            if theirs != ours {
                fields.push(("billable", ours.to_string(), theirs.to_string()));
            }
        }
        // R84: a reported cost is a charge; a message we hold free disagrees with it.
        if let Some(cost) = reported.cost.as_ref().filter(|_| !entry.billable) {
            fields.push(("cost", "free".to_owned(), format!("{} {}", cost.amount, cost.currency)));
        }
        if fields.is_empty() {
            report.agreeing += 1;
            continue;
        }
        let explanation = explain(entry);
        for (field, ours, theirs) in fields {
            report.differences.push(MessageDifference {
                message_id: message.message_id.to_string(),
                entry_id: entry.id.to_string(),
                delivered_at: message.delivered_at.to_string(),
                field: field.to_owned(),
                ours,
                reported: theirs,
                explanation: explanation.summary.clone(),
                rules: explanation.rule_path.iter().map(|s| format!("{}: {}", s.rule, s.says)).collect(),
            });
        }
    }
    report
}

/// Our category as `pricing_analytics` names it (§5.2): upper case; AI Providers are `AI_BOT`
/// (R83c).
fn analytics_category(category: &str) -> String {
    match category {
        "general_purpose_ai" => "AI_BOT".to_owned(),
        other => other.to_ascii_uppercase(),
    }
}

/// A data point of `conversation_analytics` or `pricing_analytics` (§5.1, §5.2).
#[derive(Debug, Clone, Deserialize)]
pub struct DataPoint {
    pub start: i64,
    pub end: i64,
    #[serde(default)]
    pub conversation: Option<i64>,
    #[serde(default)]
    pub volume: Option<i64>,
    #[serde(default)]
    pub cost: Option<f64>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub pricing_type: Option<String>,
    #[serde(default)]
    pub pricing_category: Option<String>,
    #[serde(default)]
    pub conversation_type: Option<String>,
    #[serde(default)]
    pub conversation_category: Option<String>,
    #[serde(default)]
    pub tier: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Series {
    #[serde(default)]
    data_points: Vec<DataPoint>,
}

#[derive(Debug, Deserialize)]
struct Field {
    #[serde(default)]
    data: Vec<Series>,
}

#[derive(Debug, Deserialize)]
struct AnalyticsResponse {
    #[serde(default)]
    conversation_analytics: Option<Field>,
    #[serde(default)]
    pricing_analytics: Option<Field>,
}

/// Which analytics a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalyticsKind {
    ConversationAnalytics,
    PricingAnalytics,
}

/// Reads a Graph API response as a user saved it (`GET /<WABA_ID>?fields=pricing_analytics…`).
pub fn parse_analytics(text: &str) -> Result<(AnalyticsKind, Vec<DataPoint>), String> {
    let response: AnalyticsResponse =
        serde_json::from_str(text).map_err(|e| format!("not an analytics response: {e}"))?;
    let (kind, field) = match (response.pricing_analytics, response.conversation_analytics) {
        (Some(field), None) => (AnalyticsKind::PricingAnalytics, field),
        (None, Some(field)) => (AnalyticsKind::ConversationAnalytics, field),
        (Some(_), Some(_)) => {
            return Err("the file holds both conversation and pricing analytics; give one".into())
        }
        (None, None) => {
            return Err("the file has neither `conversation_analytics` nor `pricing_analytics`".into())
        }
    };
    Ok((kind, field.data.into_iter().flat_map(|s| s.data_points).collect()))
}

/// When a difference counts: more than `count` units and more than `percent` of Meta's figure.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Tolerance {
    pub count: i64,
    pub percent: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { count: 0, percent: 1.0 }
    }
}

impl Tolerance {
    fn exceeded(&self, ours: f64, theirs: f64) -> bool {
        let difference = (ours - theirs).abs();
        difference > self.count as f64 && difference > theirs.abs() * self.percent / 100.0
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PeriodRow {
    pub start: i64,
    pub end: i64,
    /// The data point's dimensions, as Meta named them.
    pub dimensions: BTreeMap<String, String>,
    pub theirs: i64,
    pub ours: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub their_cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub our_cost: Option<Money>,
    pub exceeds_tolerance: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeriodReport {
    pub kind: AnalyticsKind,
    pub tolerance: Tolerance,
    pub rows: Vec<PeriodRow>,
    /// Rows beyond the tolerance.
    pub differences: usize,
}

/// Our counts (and amounts) for each data point: conversations for `conversation_analytics`,
/// per-message entries for `pricing_analytics`, filtered by the point's dimensions.
pub fn reconcile_period(
    kind: AnalyticsKind,
    points: &[DataPoint],
    live: &[Entry],
    pricer: &mut Pricer,
    tolerance: Tolerance,
) -> PeriodReport {
    // Each live entry once: its instant, country and the dimension values Meta would give it.
    struct Ours {
        at: i64,
        country: Option<String>,
        category: String,
        pricing_type: String,
        conversation_type: &'static str,
        count: i64,
        /// The unit rate of each of the `count` charges.
        amount: Option<Money>,
    }
    let mut ours = Vec::new();
    // Priced in time order with a fresh pricer, so tier positions follow delivery order.
    let mut sorted: Vec<&Entry> = live.iter().filter(|e| e.action == EntryAction::Post).collect();
    sorted.sort_by_key(|e| (e.fact.at(), e.id));
    for entry in sorted {
        let conversation = matches!(&*entry.fact, Fact::ConversationOpened(_));
        let wanted = match kind {
            AnalyticsKind::ConversationAnalytics => conversation,
            // R83b: Meta Business Agent usage is reported by its own insights, not here.
            AnalyticsKind::PricingAnalytics => matches!(&*entry.fact, Fact::MessageBilled(m)
                if m.pricing_model == PricingModel::Pmp && m.category != PricingCategory::MetaBusinessAgent),
        };
        if !wanted {
            continue;
        }
        // A group message counts once per participant, in each one's country (R59).
        for priced in pricer.price(entry) {
            ours.push(Ours {
                at: entry.fact.at().0,
                country: priced.country,
                category: analytics_category(&priced.line.category),
                pricing_type: entry.pricing_type.map_or("", |p| p.as_str()).to_ascii_uppercase(),
                conversation_type: match entry.free_reason {
                    Some(ledger_core::FreeReason::EntryPoint) => "FREE_ENTRY_POINT",
                    Some(ledger_core::FreeReason::FreeTier) => "FREE_TIER",
                    _ => "REGULAR",
                },
                count: priced.quantity,
                amount: priced.line.unit_rate,
            });
        }
    }
    let mut rows = Vec::with_capacity(points.len());
    for point in points {
        let mut dimensions = BTreeMap::new();
        let mut put = |name: &str, value: &Option<String>| {
            if let Some(value) = value {
                dimensions.insert(name.to_owned(), value.clone());
            }
        };
        put("country", &point.country);
        put("pricing_type", &point.pricing_type);
        put("pricing_category", &point.pricing_category);
        put("conversation_type", &point.conversation_type);
        put("conversation_category", &point.conversation_category);
        put("tier", &point.tier);
        let entry_point_type = point.pricing_type.as_deref() == Some("FREE_ENTRY_POINT");
        let matching = ours.iter().filter(|o| {
            o.at >= point.start
                && o.at < point.end
                && point.country.as_ref().is_none_or(|c| o.country.as_deref() == Some(c.as_str()))
                && point.pricing_type.as_ref().is_none_or(|t| *t == o.pricing_type)
                // Q8: entry point rows are matched by type; their category differs by source.
                && (entry_point_type || point.pricing_category.as_ref().is_none_or(|c| *c == o.category))
                && point.conversation_category.as_ref().is_none_or(|c| *c == o.category)
                && point.conversation_type.as_ref().is_none_or(|t| {
                    // Q9: the filter says FREE_ENTRY, responses FREE_ENTRY_POINT.
                    let t = if t == "FREE_ENTRY" { "FREE_ENTRY_POINT" } else { t.as_str() };
                    t == o.conversation_type
                })
        });
        let (mut count, mut cost) = (0i64, Money::ZERO);
        for o in matching {
            count += o.count;
            let amount = o.amount.unwrap_or(Money::ZERO).times(o.count).unwrap_or(Money::ZERO);
            cost = cost.checked_add(amount).unwrap_or(cost);
        }
        let theirs = point.volume.or(point.conversation).unwrap_or(0);
        let mut exceeds = tolerance.exceeded(count as f64, theirs as f64);
        if let Some(their_cost) = point.cost {
            let our_cost = cost.0 as f64 / 1e9;
            exceeds |= (our_cost - their_cost).abs() > 0.005
                && (our_cost - their_cost).abs() > their_cost.abs() * tolerance.percent / 100.0;
        }
        rows.push(PeriodRow {
            start: point.start,
            end: point.end,
            dimensions,
            theirs,
            ours: count,
            their_cost: point.cost,
            our_cost: point.cost.map(|_| cost),
            exceeds_tolerance: exceeds,
        });
    }
    let differences = rows.iter().filter(|r| r.exceeds_tolerance).count();
    PeriodReport { kind, tolerance, rows, differences }
}

/// How far apart Meta's `tier_update_time` and the delivery of our charge that reached the tier
/// may be and still agree: Meta counts charges as it bills them, the ledger at delivery.
pub const TIER_TIME_SLACK_SECONDS: i64 = 3_600;

/// One tier change Meta announced (R55), against our own accrual (R54).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierRow {
    /// As reported: `UTILITY`, `AUTHENTICATION`, `AUTHENTICATION_INTERNATIONAL`.
    pub pricing_category: String,
    pub region: String,
    /// `LOWER:UPPER` as reported.
    pub tier: String,
    pub effective_month: String,
    /// The authoritative `tier_update_time`: the smallest of its duplicates (R55).
    pub reported_at: i64,
    /// How many webhooks announced this tier change.
    pub announcements: usize,
    /// The delivery of our charge at the tier's lower bound, if our accrual reached it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ours_reached_at: Option<i64>,
    /// Our charges in the accrual (portfolio × market × family × month) over the month.
    pub ours_count: u64,
    pub agrees: bool,
    /// Why it does not agree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierReport {
    pub rows: Vec<TierRow>,
    pub differences: usize,
}

/// Compares the WABA's tier webhooks (R55) with the ledger's accrual (R54): Meta announces a
/// tier when the portfolio's charged utility or authentication messages in a market and month
/// reach the tier's lower bound, so our charge at that position must exist and have been
/// delivered within [`TIER_TIME_SLACK_SECONDS`] of Meta's `tier_update_time`. `live` must hold
/// the entries of every WABA of the portfolio (accrual spans them), standing after reversals.
pub fn reconcile_tiers(
    waba_id: &str,
    updates: &[ledger_core::VolumeTierUpdate],
    live: &[Entry],
    pricer: &Pricer,
) -> TierReport {
    // R55: duplicates of one tier change can arrive; the smallest tier_update_time wins.
    let mut announced: BTreeMap<(String, String, String, LocalMonth), (i64, usize)> = BTreeMap::new();
    for update in updates {
        let key = (
            update.pricing_category.to_ascii_uppercase(),
            update.region.clone(),
            update.tier.clone(),
            update.effective_month,
        );
        let slot = announced.entry(key).or_insert((update.tier_update_time.0, 0));
        slot.0 = slot.0.min(update.tier_update_time.0);
        slot.1 += 1;
    }
    // The portfolio's charges by accrual, in delivery order: the pricer's own accrual rule.
    let business = pricer.business_of(waba_id);
    let mut accruals: HashMap<Accrual, Vec<(i64, u128)>> = HashMap::new();
    for entry in live.iter().filter(|e| e.action == EntryAction::Post) {
        if let Some(accrual) = pricer.accrual(entry).filter(|a| a.business == business) {
            accruals.entry(accrual).or_default().push((entry.fact.at().0, entry.id.0));
        }
    }
    for charges in accruals.values_mut() {
        charges.sort_unstable();
    }
    let mut rows = Vec::with_capacity(announced.len());
    for ((category, region, tier, month), (reported_at, announcements)) in announced {
        let mut row = TierRow {
            pricing_category: category.clone(),
            region: region.clone(),
            tier: tier.clone(),
            effective_month: month.to_string(),
            reported_at,
            announcements,
            ours_reached_at: None,
            ours_count: 0,
            agrees: false,
            reason: None,
        };
        let family = match category.as_str() {
            "UTILITY" => "utility",
            "AUTHENTICATION" | "AUTHENTICATION_INTERNATIONAL" => "authentication",
            _ => {
                row.reason = Some(format!("{category} has no volume tiers (R54)"));
                rows.push(row);
                continue;
            }
        };
        let Some(lower) = tier.split(':').next().and_then(|l| l.trim().parse::<u64>().ok()) else {
            row.reason = Some(format!("tier {tier:?} is not LOWER:UPPER"));
            rows.push(row);
            continue;
        };
        let accrual = Accrual { business: business.to_owned(), market: region.clone(), family, month };
        let charges = accruals.get(&accrual).map_or(&[][..], Vec::as_slice);
        row.ours_count = charges.len() as u64;
        row.ours_reached_at = charges.get(lower.max(1) as usize - 1).map(|(at, _)| *at);
        match row.ours_reached_at {
            None => {
                row.reason = Some(format!(
                    "the ledger counts {} charged {family} messages in {region} for {month}; the tier starts at {lower}",
                    row.ours_count
                ))
            }
            Some(at) if (at - reported_at).abs() > TIER_TIME_SLACK_SECONDS => {
                row.reason = Some(format!(
                    "the ledger reached charge {lower} at {at}, {} s from Meta's tier_update_time",
                    at - reported_at
                ))
            }
            Some(_) => row.agrees = true,
        }
        rows.push(row);
    }
    let differences = rows.iter().filter(|r| !r.agrees).count();
    TierReport { rows, differences }
}
