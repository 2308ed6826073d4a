//! Reconciliation catches a planted disagreement and stays quiet on agreement.

mod common;

use std::sync::Arc;

use common::*;
use ledger_core::TemplateCategory::{Marketing, Utility};
use ledger_core::{
    EventKind, Ledger, LedgerConfig, PricingModel, PricingType, ReportedCategory, ReportedPricing,
};
use ledger_pricing::reconcile::{
    parse_analytics, reconcile_messages, reconcile_period, reconcile_tiers, AnalyticsKind, Tolerance,
};
use ledger_pricing::{Pricer, Pricing};

const INDIA: &str = "919876543210";

/// Adds the provider's pricing report to the delivering status of message `id`.
fn report(h: &mut History, id: &str, category: ReportedCategory, pricing_type: PricingType, billable: bool) {
    for event in &mut h.events {
        if let EventKind::MessageStatus(status) = &mut event.kind {
            if status.message_id.as_str() == id {
                status.reported = Some(ReportedPricing {
                    pricing_model: Some(PricingModel::Pmp),
                    category: Some(category.clone()),
                    pricing_type: Some(pricing_type),
                    billable: Some(billable),
                    ..ReportedPricing::default()
                });
            }
        }
    }
}

fn live(h: &History) -> Vec<ledger_core::Entry> {
    let mut ledger = Ledger::new(LedgerConfig::default());
    let mut journal = Vec::new();
    for event in &h.events {
        ledger.apply(event.clone(), &mut journal).expect("valid");
    }
    ledger.live_entries()
}

fn pricer() -> Pricer {
    Pricer::new(Arc::new(Pricing::bundled()))
}

#[test]
fn agreement_is_quiet_and_a_planted_category_difference_is_reported_with_its_rules() {
    let mut h = History::at(ERA4);
    let marketing = h.delivered("w", INDIA, 0.0, Some(Marketing));
    let utility = h.delivered("w", INDIA, 30.0, Some(Utility));
    report(&mut h, &marketing, ReportedCategory::Marketing, PricingType::Regular, true);
    report(&mut h, &utility, ReportedCategory::Utility, PricingType::Regular, true);
    let quiet = reconcile_messages(&live(&h), &mut pricer());
    assert_eq!((quiet.compared, quiet.agreeing), (2, 2));
    assert!(quiet.differences.is_empty());

    // Planted: Meta billed the utility template as marketing (E6).
    report(&mut h, &utility, ReportedCategory::Marketing, PricingType::Regular, true);
    let loud = reconcile_messages(&live(&h), &mut pricer());
    assert_eq!(loud.differences.len(), 1);
    let difference = &loud.differences[0];
    assert_eq!(
        (
            difference.message_id.as_str(),
            difference.field.as_str(),
            difference.ours.as_str(),
            difference.reported.as_str()
        ),
        (utility.as_str(), "category", "utility", "marketing")
    );
    assert!(
        difference.rules.iter().any(|r| r.starts_with("R51")),
        "carries the rule path: {:?}",
        difference.rules
    );
}

#[test]
fn a_planted_billable_difference_is_reported() {
    let mut h = History::at(ERA4);
    h.user_message("w", INDIA, 0.0, None);
    let in_window = h.delivered("w", INDIA, 1.0, Some(Utility));
    report(&mut h, &in_window, ReportedCategory::Utility, PricingType::Regular, true);
    let report = reconcile_messages(&live(&h), &mut pricer());
    let fields: Vec<_> =
        report.differences.iter().map(|d| (d.field.as_str(), d.ours.as_str(), d.reported.as_str())).collect();
    assert_eq!(
        fields,
        vec![("pricing_type", "free_customer_service", "regular"), ("billable", "false", "true")]
    );
}

fn analytics(volume_marketing: i64, cost_marketing: f64) -> String {
    // 2025-09-01 00:00 UTC to 2025-09-02 00:00 UTC, one daily bucket per dimension set.
    format!(
        r#"{{"pricing_analytics": {{"data": [{{"data_points": [
            {{"start": 1756684800, "end": 1756771200, "country": "IN", "pricing_type": "REGULAR",
              "pricing_category": "MARKETING", "volume": {volume_marketing}, "cost": {cost_marketing}}},
            {{"start": 1756684800, "end": 1756771200, "country": "IN", "pricing_type": "FREE_CUSTOMER_SERVICE",
              "pricing_category": "UTILITY", "volume": 1}}
        ]}}]}}, "id": "w"}}"#
    )
}

#[test]
fn period_reconciliation_agrees_then_flags_a_planted_volume_and_cost_difference() {
    let mut h = History::at(ERA4);
    h.delivered("w", INDIA, 0.0, Some(Marketing));
    h.delivered("w", INDIA, 2.0, Some(Marketing));
    h.user_message("w", INDIA, 3.0, None);
    h.delivered("w", INDIA, 4.0, Some(Utility));
    let entries = live(&h);

    let (kind, points) = parse_analytics(&analytics(2, 0.0214)).expect("parse");
    assert_eq!(kind, AnalyticsKind::PricingAnalytics);
    let report = reconcile_period(kind, &points, &entries, &mut pricer(), Tolerance::default());
    assert_eq!(report.differences, 0, "{:#?}", report.rows);
    assert_eq!(report.rows.iter().map(|r| (r.theirs, r.ours)).collect::<Vec<_>>(), vec![(2, 2), (1, 1)]);

    let (kind, points) = parse_analytics(&analytics(3, 0.0321)).expect("parse");
    let report = reconcile_period(kind, &points, &entries, &mut pricer(), Tolerance::default());
    assert_eq!(report.differences, 1);
    assert!(report.rows[0].exceeds_tolerance);

    // Inside a generous tolerance the same difference is accepted.
    let loose = Tolerance { count: 1, percent: 50.0 };
    let report = reconcile_period(kind, &points, &entries, &mut pricer(), loose);
    assert_eq!(report.differences, 0);
}

#[test]
fn analytics_files_that_are_not_analytics_are_refused_clearly() {
    assert!(parse_analytics("{}")
        .expect_err("refused")
        .contains("neither `conversation_analytics` nor `pricing_analytics`"));
    assert!(parse_analytics("not json").expect_err("refused").starts_with("not an analytics response"));
}

fn tier_update(category: &str, tier: &str, at: i64) -> ledger_core::VolumeTierUpdate {
    ledger_core::VolumeTierUpdate {
        pricing_category: category.into(),
        region: "India".into(),
        tier: tier.into(),
        effective_month: month("2025-09"),
        tier_update_time: ledger_core::Timestamp(at),
    }
}

#[test]
fn tier_webhooks_agree_with_the_accrual_and_planted_ones_are_caught() {
    // Five charged utility templates to India, one per hour; an in-window one does not accrue
    // (R54), nor does a group's (R59).
    let mut h = History::at(ERA4);
    for i in 0..5 {
        h.delivered("w", INDIA, f64::from(i), Some(Utility));
    }
    h.user_message("w", INDIA, 6.0, None);
    h.delivered("w", INDIA, 7.0, Some(Utility));
    h.delivered_to_group("w", "group-1", 8.0, Utility, &["919876543211", "919876543212"]);
    let hour = |h: i64| ERA4 + h * 3_600;
    let live = live(&h);

    // Meta announces tier 4:6 when the fourth charge (delivered at hour 3) is billed, twice.
    let updates = [tier_update("UTILITY", "4:6", hour(3) + 120), tier_update("UTILITY", "4:6", hour(3) + 60)];
    let report = reconcile_tiers("w", &updates, &live, &pricer());
    assert_eq!(report.differences, 0, "{report:?}");
    let row = &report.rows[0];
    assert_eq!((row.reported_at, row.announcements), (hour(3) + 60, 2), "the earliest is authoritative");
    assert_eq!((row.ours_reached_at, row.ours_count), (Some(hour(3)), 5));

    // Planted: a tier the accrual never reached, one announced hours before our charge reached
    // it, and a category without tiers.
    let planted = [
        tier_update("UTILITY", "7:9", hour(6)),
        tier_update("UTILITY", "2:3", hour(5)),
        tier_update("MARKETING", "0:MAX", hour(1)),
    ];
    let report = reconcile_tiers("w", &planted, &live, &pricer());
    assert_eq!(report.differences, 3, "{report:?}");
    let reasons: Vec<&str> = report.rows.iter().filter_map(|r| r.reason.as_deref()).collect();
    assert_eq!(
        reasons,
        vec![
            "MARKETING has no volume tiers (R54)",
            "the ledger reached charge 2 at 1756688400, -14400 s from Meta's tier_update_time",
            "the ledger counts 5 charged utility messages in India for 2025-09; the tier starts at 7",
        ]
    );
}
