//! Prices the spec's scenarios with the bundled cards and illustrative tier cards (S11 itself
//! names its thresholds A < B < C only symbolically).

mod common;

use chrono::NaiveDate;
use common::*;
use ledger_core::TemplateCategory::{Authentication, Marketing, Utility};
use ledger_pricing::{MarketMap, Pricing, PricingSettings, RateCard};

const INDIA: &str = "919876543210";
const INDONESIA: &str = "6281234567890";

fn bundled_markets() -> MarketMap {
    MarketMap::from_csv("markets.csv", include_str!("../../../rates/markets.csv")).expect("markets")
}

/// An illustrative tiered USD card for India effective 2025-07-01: utility and authentication
/// bands 1–3 (list), 4–6 (tier 1), 7+ (tier 2); authentication-international with its own bands.
fn tiered_card() -> RateCard {
    let text = "effective_from,currency,market,category,tier_from,tier_to,rate
2025-07-01,USD,India,marketing,1,MAX,0.0107
2025-07-01,USD,India,utility,1,3,0.0014
2025-07-01,USD,India,utility,4,6,0.0010
2025-07-01,USD,India,utility,7,MAX,0.0008
2025-07-01,USD,India,authentication,1,3,0.0014
2025-07-01,USD,India,authentication,4,6,0.0011
2025-07-01,USD,India,authentication,7,MAX,0.0009
2025-07-01,USD,India,authentication_international,1,3,0.0280
2025-07-01,USD,India,authentication_international,4,6,0.0250
2025-07-01,USD,India,authentication_international,7,MAX,0.0220
";
    RateCard::from_csv("tiered.csv", text, &bundled_markets()).expect("tiered card")
}

fn tiered(settings: &str) -> Pricing {
    let settings = PricingSettings::from_toml("settings.toml", settings).expect("settings");
    Pricing::new(bundled_markets(), vec![tiered_card()], settings).expect("pricing")
}

fn row(
    category: &str,
    market: &str,
    tier: Option<&str>,
    count: i64,
    amount: &str,
) -> (String, String, Option<String>, i64, String) {
    (category.into(), market.into(), tier.map(str::to_owned), count, amount.into())
}

#[test]
fn s1_era2_two_conversations_at_the_june_2023_india_rates() {
    let mut h = History::at(ERA2);
    h.delivered("w", INDIA, 0.0, Some(Marketing));
    h.delivered("w", INDIA, 4.0, Some(Utility));
    h.delivered("w", INDIA, 10.0, Some(Utility));
    let invoice = invoice(&h.price(Pricing::bundled()), "w", "2024-03");
    assert_eq!(
        charged(&invoice),
        vec![row("marketing", "India", None, 1, "0.0099"), row("utility", "India", None, 1, "0.0042")]
    );
    assert_eq!(invoice.totals.amount.to_string(), "0.0141");
    assert_eq!(invoice.totals.charged, 2);
}

#[test]
fn s8_per_message_example_two_charges_at_the_july_2025_india_rates() {
    let mut h = History::at(ERA4);
    h.delivered("w", INDIA, 0.0, Some(Marketing));
    h.user_message("w", INDIA, 2.0, None);
    h.delivered("w", INDIA, 3.0, None);
    h.delivered("w", INDIA, 4.0, Some(Utility));
    h.delivered("w", INDIA, 30.0, Some(Utility));
    let invoice = invoice(&h.price(Pricing::bundled()), "w", "2025-09");
    assert_eq!(
        charged(&invoice),
        vec![
            row("marketing", "India", None, 1, "0.0107"),
            row("utility", "India", Some("1:MAX"), 1, "0.0014")
        ]
    );
    // The free text and in-window utility template are on the invoice at zero (R51, R52).
    let free: Vec<_> = invoice
        .lines
        .iter()
        .filter(|l| l.amount.is_some_and(|a| a.0 == 0))
        .map(|l| (l.category.as_str(), l.pricing_type.as_str(), l.free_reason.as_deref(), l.count))
        .collect();
    assert_eq!(
        free,
        vec![
            ("service", "free_customer_service", Some("non_template"), 1),
            ("utility", "free_customer_service", Some("customer_service_window"), 1)
        ]
    );
    assert_eq!(invoice.totals.amount.to_string(), "0.0121");
}

#[test]
fn s11_case1_marginal_tiers_list_rate_then_tier_rate() {
    let mut h = History::at(ERA4);
    for i in 0..8 {
        h.delivered("w", INDIA, f64::from(i), Some(Authentication));
    }
    let invoice = invoice(&h.price(tiered("")), "w", "2025-09");
    assert_eq!(
        charged(&invoice),
        vec![
            row("authentication", "India", Some("1:3"), 3, "0.0042"),
            row("authentication", "India", Some("4:6"), 3, "0.0033"),
            row("authentication", "India", Some("7:MAX"), 2, "0.0018"),
        ]
    );
}

#[test]
fn s11_tier_boundaries_are_inclusive_on_both_ends() {
    for (messages, expected_top) in [(3, "1:3"), (4, "4:6"), (6, "4:6"), (7, "7:MAX")] {
        let mut h = History::at(ERA4);
        for i in 0..messages {
            h.delivered("w", INDIA, f64::from(i), Some(Utility));
        }
        let invoice = invoice(&h.price(tiered("")), "w", "2025-09");
        let tiers: Vec<_> = invoice.lines.iter().filter_map(|l| l.tier.clone()).collect();
        assert!(tiers.contains(&expected_top.to_owned()), "{messages} messages: tiers {tiers:?}");
        let beyond = ["1:3", "4:6", "7:MAX"].iter().skip_while(|t| **t != expected_top).skip(1);
        for tier in beyond {
            assert!(!tiers.contains(&(*tier).to_owned()), "{messages} messages reached {tier}");
        }
        assert_eq!(invoice.totals.charged, i64::from(messages));
    }
}

#[test]
fn s11_case2_authentication_international_from_day_15_keeps_accruing() {
    // 2025-09-15 00:00 UTC: the business's start time for India; its primary location is Indonesia.
    let settings = r#"
[[business]]
id = "acme"
wabas = ["w"]
primary_location = "ID"
[business.authentication_international]
start_time = "2025-09-15T00:00:00Z"
"#;
    let mut h = History::at(ERA4);
    for day in [1.0, 2.0, 3.0, 4.0] {
        h.delivered("w", INDIA, day * 24.0, Some(Authentication));
    }
    for day in [15.0, 16.0] {
        h.delivered("w", INDIA, day * 24.0, Some(Authentication));
    }
    let invoice = invoice(&h.price(tiered(settings)), "w", "2025-09");
    assert_eq!(
        charged(&invoice),
        vec![
            row("authentication_international", "India", Some("4:6"), 2, "0.05"),
            row("authentication", "India", Some("1:3"), 3, "0.0042"),
            row("authentication", "India", Some("4:6"), 1, "0.0011"),
        ]
    );
}

#[test]
fn s12_domestic_rate_always_applies_in_the_primary_location_country() {
    let settings = r#"
[[business]]
id = "acme"
wabas = ["w"]
primary_location = "IN"
[business.authentication_international]
start_time = "2025-01-01T00:00:00Z"
"#;
    let mut h = History::at(ERA4);
    h.delivered("w", INDIA, 1.0, Some(Authentication));
    let invoice = invoice(&h.price(tiered(settings)), "w", "2025-09");
    assert_eq!(charged(&invoice), vec![row("authentication", "India", Some("1:3"), 1, "0.0014")]);
}

#[test]
fn s12_exception_country_start_time_is_used_for_that_country() {
    let settings = r#"
[[business]]
id = "acme"
wabas = ["w"]
[business.authentication_international]
start_time = "2025-01-01T00:00:00Z"
exception_countries = { IN = "2025-12-01T00:00:00Z" }
"#;
    let mut h = History::at(ERA4);
    h.delivered("w", INDIA, 1.0, Some(Authentication));
    let invoice = invoice(&h.price(tiered(settings)), "w", "2025-09");
    assert_eq!(charged(&invoice), vec![row("authentication", "India", Some("1:3"), 1, "0.0014")]);
}

#[test]
fn s11_case3_two_time_zones_accrue_toward_two_months_at_once() {
    // Portfolio "acme": WABA "la" in Los Angeles, "in" in Kolkata. 2025-08-01 03:00 UTC is still
    // July 31 in Los Angeles and already August 1 in Kolkata.
    let settings = r#"
[[business]]
id = "acme"
wabas = ["la", "in"]
"#;
    let aug1_03utc = 1_754_017_200;
    let mut h = History::at(aug1_03utc);
    h.settings("la", "America/Los_Angeles");
    h.settings("in", "Asia/Kolkata");
    // Three July utility charges via "in" (its July), then one each via "la" and "in".
    for back in [96.0, 72.0, 48.0] {
        h.delivered("in", INDIA, -back, Some(Utility));
    }
    h.delivered("la", INDIA, 0.0, Some(Utility));
    h.delivered("in", INDIA, 0.0, Some(Utility));
    let book = h.price(tiered(settings));
    // "la" is still in July: the portfolio's fourth July charge, in tier 1.
    assert_eq!(
        charged(&invoice(&book, "la", "2025-07")),
        vec![row("utility", "India", Some("4:6"), 1, "0.001")]
    );
    // "in" accrues toward August: its first August charge is at the list rate.
    assert_eq!(
        charged(&invoice(&book, "in", "2025-08")),
        vec![row("utility", "India", Some("1:3"), 1, "0.0014")]
    );
    assert_eq!(
        charged(&invoice(&book, "in", "2025-07")),
        vec![row("utility", "India", Some("1:3"), 3, "0.0042")]
    );
}

#[test]
fn a_rate_no_source_gives_is_reported_unpriced_not_guessed() {
    // Colombia's utility rate changed on 2025-10-01 and its July 2025 figure was not found: the
    // 2025-07-01 card names it `n/a`.
    let mut h = History::at(ERA4);
    h.delivered("w", "573001234567", 0.0, Some(Utility));
    let colombia = invoice(&h.price(Pricing::bundled()), "w", "2025-09");
    assert_eq!(colombia.totals.unpriced, 1);
    let reason = colombia.lines[0].unpriced.as_deref().expect("unpriced");
    assert!(reason.starts_with("card 2025-07-01 lists no published utility rate for Colombia"), "{reason}");
    // Indonesia, on the same card, is priced (carried from the 2025-10-01 card: unchanged then).
    let mut h = History::at(ERA4);
    h.delivered("w", INDONESIA, 0.0, Some(Marketing));
    let priced = invoice(&h.price(Pricing::bundled()), "w", "2025-09");
    assert_eq!(priced.totals.unpriced, 0);
}

#[test]
fn r5_markets_follow_calling_codes_area_codes_and_dates() {
    let markets = bundled_markets();
    let before = NaiveDate::from_ymd_opt(2025, 9, 30).expect("date");
    let after = NaiveDate::from_ymd_opt(2025, 10, 1).expect("date");
    for (number, market) in [
        ("18095551234", "Rest of Latin America"),
        ("18295551234", "Rest of Latin America"),
        ("18765551234", "Rest of Latin America"),
        ("17875551234", "Rest of Latin America"),
        ("14155552671", "North America"),
        ("16135550123", "North America"),
        ("12425551234", "North America"),
        ("919876543210", "India"),
        ("447400123456", "United Kingdom"),
        ("447911123456", "United Kingdom"),
        ("77012345678", "Russia"),
        ("5511987654321", "Brazil"),
        ("4917612345678", "Germany"),
        ("35312345678", "Rest of Western Europe"),
    ] {
        assert_eq!(markets.locate(number, before).market, market, "{number}");
    }
    assert_eq!(markets.locate("263771234567", before).market, "Other", "Zimbabwe before the move");
    assert_eq!(markets.locate("263771234567", after).market, "Rest of Africa", "Zimbabwe from 2025-10-01");
    let kazakhstan_standalone = NaiveDate::from_ymd_opt(2026, 10, 1).expect("date");
    assert_eq!(markets.locate("77012345678", kazakhstan_standalone).market, "Kazakhstan");
    assert_eq!(markets.locate("US.123456", before).market, "unknown", "a business-scoped id is not a number");
}

// S13 / R59 — group messages: one charge per participant delivered to, at each one's rate.

const GROUP: &str = "120363000000000001";

fn indian(n: usize) -> String {
    format!("91987654320{n}")
}

#[test]
fn s13_group_marketing_to_five_delivered_to_five_then_four_at_the_july_2025_india_rate() {
    for (reached, amount) in [(5i64, "0.0535"), (4, "0.0428")] {
        let participants: Vec<String> = (0..reached as usize).map(indian).collect();
        let reached_refs: Vec<&str> = participants.iter().map(String::as_str).collect();
        let mut h = History::at(ERA4);
        h.delivered_to_group("w", GROUP, 0.0, Marketing, &reached_refs);
        let invoice = invoice(&h.price(Pricing::bundled()), "w", "2025-09");
        assert_eq!(charged(&invoice), vec![row("group_marketing", "India", None, reached, amount)]);
        assert_eq!(invoice.lines[0].unit_rate.map(|r| r.to_string()).as_deref(), Some("0.0107"));
        assert_eq!(invoice.totals.charged, reached);
    }
}

#[test]
fn s13_each_participant_is_charged_at_its_own_country_rate() {
    let text = "effective_from,currency,market,category,tier_from,tier_to,rate
2025-07-01,USD,India,marketing,1,MAX,0.0107
2025-07-01,USD,Brazil,marketing,1,MAX,0.0625
";
    let card = RateCard::from_csv("two-markets.csv", text, &bundled_markets()).expect("card");
    let pricing = Pricing::new(bundled_markets(), vec![card], PricingSettings::default()).expect("pricing");
    let mut h = History::at(ERA4);
    h.delivered_to_group(
        "w",
        GROUP,
        0.0,
        Marketing,
        &[&indian(0), "5511987654321", &indian(1), "5521987654321"],
    );
    let invoice = invoice(&h.price(pricing), "w", "2025-09");
    assert_eq!(
        charged(&invoice),
        vec![
            row("group_marketing", "Brazil", None, 2, "0.125"),
            row("group_marketing", "India", None, 2, "0.0214")
        ]
    );
    assert_eq!(invoice.totals.amount.to_string(), "0.1464");
}

#[test]
fn r59_group_utility_is_charged_at_the_list_rate_and_does_not_move_the_tier() {
    let mut h = History::at(ERA4);
    for i in 0..3 {
        h.delivered("w", INDIA, f64::from(i), Some(Utility));
    }
    // Outside any service window: billable, four participants, not tier-eligible (R59).
    h.delivered_to_group("w", GROUP, 4.0, Utility, &[&indian(0), &indian(1), &indian(2), &indian(3)]);
    h.delivered("w", INDIA, 5.0, Some(Utility));
    let invoice = invoice(&h.price(tiered("")), "w", "2025-09");
    assert_eq!(
        charged(&invoice),
        vec![
            row("group_utility", "India", None, 4, "0.0056"),
            row("utility", "India", Some("1:3"), 3, "0.0042"),
            row("utility", "India", Some("4:6"), 1, "0.001"),
        ]
    );
}

#[test]
fn era1_conversations_beyond_the_free_thousand_are_priced_by_the_2022_card() {
    // R13: the first 1,000 conversations of the WABA's month are free, either type; the 1,001st
    // business-initiated conversation to Brazil costs the era-1 rate. A user-initiated one
    // (a reply inside the service window) is the 1,002nd.
    let mut h = History::at(ERA1);
    for n in 0..1001 {
        h.delivered("w", &format!("55119876{n:05}"), f64::from(n) * 0.01, Some(Marketing));
    }
    h.user_message("w", "5521987650000", 20.0, None);
    h.delivered("w", "5521987650000", 21.0, Some(Utility));
    let invoice = invoice(&h.price(Pricing::bundled()), "w", "2022-09");
    assert_eq!(
        charged(&invoice),
        vec![
            row("business_initiated", "Brazil", None, 1, "0.05"),
            row("user_initiated", "Brazil", None, 1, "0.03"),
        ]
    );
    let free: Vec<_> = invoice
        .lines
        .iter()
        .filter(|l| l.free_reason.as_deref() == Some("free_tier"))
        .map(|l| (l.category.as_str(), l.count, l.card))
        .collect();
    assert_eq!(free, vec![("business_initiated", 1000, NaiveDate::from_ymd_opt(2022, 2, 1))]);
}

/// 2026-10-05 00:00 UTC: era 5.
const ERA5: i64 = 1_791_158_400;
const BRAZIL: &str = "5511987650001";

#[test]
fn d9f_a_max_price_message_is_priced_at_its_reported_cost_provisionally() {
    let mut h = History::at(ERA5);
    let id = h.delivered("w", BRAZIL, 0.0, Some(Marketing));
    h.report_on_delivery(&id, "0.021", "USD");
    let invoice = invoice(&h.price(Pricing::bundled()), "w", "2026-10");
    let line = &invoice.lines[0];
    assert_eq!((line.category.as_str(), line.count), ("marketing", 1));
    assert_eq!(line.unit_rate.map(|r| r.to_string()).as_deref(), Some("0.021"), "R84: not the card's 0.0625");
    assert!(line.provisional && line.card.is_none());
    // A cost in another currency than the account's is not converted: unpriced, with the reason.
    let mut h = History::at(ERA5);
    let id = h.delivered("w", BRAZIL, 0.0, Some(Marketing));
    h.report_on_delivery(&id, "0.11", "BRL");
    let line = &invoice_of(&h)[0];
    assert!(line.unpriced.as_deref().is_some_and(|r| r.contains("BRL")), "{line:?}");
}

fn invoice_of(h: &History) -> Vec<ledger_pricing::InvoiceLine> {
    invoice(&h.price(Pricing::bundled()), "w", "2026-10").lines
}

#[test]
fn era5_service_beyond_the_allowance_and_in_window_utility_are_priced_for_brazil() {
    // R80, R81 [3P rates, Q23]: the 2026-10-01 card's service column (= utility) prices both.
    let mut h = History::at(ERA5);
    h.user_message("w", BRAZIL, 0.0, None);
    h.delivered("w", BRAZIL, 1.0, Some(Utility));
    h.delivered("w", BRAZIL, 2.0, None);
    let lines = invoice_of(&h);
    let find = |category: &str| lines.iter().find(|l| l.category == category).expect(category);
    let utility = find("utility");
    assert_eq!(
        (utility.pricing_type.as_str(), utility.unit_rate.map(|r| r.to_string())),
        ("regular", Some("0.0068".into()))
    );
    // The first service message of the month is free within the number's allowance.
    let service = find("service");
    assert_eq!(
        (service.free_reason.as_deref(), service.amount.map(|a| a.to_string())),
        (Some("free_tier"), Some("0.00".into()))
    );
}

/// The tier state as a store keeps it: the pricer's changes applied in order.
#[derive(Clone, Default)]
struct KeptTiers(std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>>);

impl ledger_pricing::StoredTiers for KeptTiers {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.lock().expect("not poisoned").get(key).cloned()
    }
}

impl KeptTiers {
    fn write(&self, changes: Vec<ledger_pricing::TierChange>) {
        let mut kept = self.0.lock().expect("not poisoned");
        for (key, value) in changes {
            match value {
                Some(value) => kept.insert(key, value),
                None => kept.remove(&key),
            };
        }
    }

    /// A pricer continuing from what is kept (as the projector starts one over its store).
    fn restart(&self, pricing: &std::sync::Arc<Pricing>) -> ledger_pricing::Pricer {
        let accruals: Vec<(Vec<u8>, Vec<u8>)> = {
            let kept = self.0.lock().expect("not poisoned");
            let prefix = ledger_pricing::ACCRUAL_KEY_PREFIX;
            kept.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let mut pricer = ledger_pricing::Pricer::new(pricing.clone());
        pricer.keep_tiers_in(Box::new(self.clone()), accruals).expect("kept state decodes");
        pricer
    }
}

#[test]
fn r54_a_pricer_started_again_from_its_stored_tier_state_prices_as_one_that_never_stopped() {
    let mut h = History::at(ERA4);
    for i in 0..8 {
        h.delivered("w", INDIA, f64::from(i), Some(Utility));
        h.delivered("w", INDIA, f64::from(i) + 0.5, Some(Authentication));
    }
    // A late user message opens a service window over the first utility messages: they become
    // free, their postings are reversed and give their tier positions back (R54).
    h.user_message("w", INDIA, 2.2, None);
    for i in 9..14 {
        h.delivered("w", INDIA, f64::from(i), Some(Utility));
    }
    let entries = h.entries();
    assert!(entries.iter().any(|e| e.action == ledger_core::EntryAction::Reverse), "the history reverses");
    let reference = invoice(&h.price(tiered("")), "w", "2025-09");

    let pricing = std::sync::Arc::new(tiered(""));
    for every in [1, 2, 3, 5] {
        let kept = KeptTiers::default();
        let mut pricer = kept.restart(&pricing);
        let mut book = ledger_pricing::invoice::LineBook::default();
        for (n, entry) in entries.iter().enumerate() {
            for priced in pricer.price(entry) {
                book.add(priced);
            }
            if n % every == every - 1 {
                kept.write(pricer.take_tier_changes());
                pricer = kept.restart(&pricing);
            }
        }
        assert_eq!(invoice(&book, "w", "2025-09"), reference, "started again after every {every} entries");
    }
}
