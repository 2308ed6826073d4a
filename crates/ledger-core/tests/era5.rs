//! Era 5, the era in force since 2026-10-01 (spec §3.6, R80–R84): the derived scenarios D9–D9d
//! as given / when / then over the pure fold with the default rule settings, the 2026-09-30 /
//! 2026-10-01 boundary in two time zones, and the service allowance's order independence.

mod common;

use common::*;
use ledger_core::rules::Rule;
use ledger_core::{
    AllowanceScope, Charge, DeliveryStatus, Era, FreeReason, LedgerConfig, PricingCategory, PricingType,
    RuleSettings, SendContent,
    TemplateCategory::{Marketing, Utility},
};

/// 2026-10-01 00:00 UTC.
const OCT_1_2026_UTC: i64 = 1_790_812_800;

fn free_form_content() -> SendContent {
    SendContent::NonTemplate { kind: "text".into() }
}

/// The user writes at h0 and the business answers `replies` free-form messages within the
/// window, 30 s apart, starting at h1.
fn replies(t0: i64, replies: usize) -> (Given, Vec<String>) {
    let mut g = Given::at(t0);
    g.user_message(0.0);
    let ids = (0..replies).map(|i| g.free_form(1.0 + i as f64 * 30.0 / HOUR as f64)).collect();
    (g, ids)
}

#[test]
fn d9_the_1001st_service_message_of_a_number_in_october_is_charged() {
    // Given 1,001 free-form replies delivered on one business number in October 2026,
    let (g, ids) = replies(ERA5, 1_001);
    // when the ledger folds them with the default settings,
    let then = g.fold();
    // then the first 1,000 are free within the allowance (R80) and the 1,001st is charged as
    // service (`regular`/`service`, R52 as updated).
    for id in &ids[..1_000] {
        let (entry, message) = then.message(id);
        assert_eq!(entry.free_reason, Some(FreeReason::FreeTier), "{id}");
        assert_eq!(entry.pricing_type, Some(PricingType::FreeCustomerService));
        assert_eq!(message.category, PricingCategory::Service);
    }
    let (entry, message) = then.message(&ids[1_000]);
    assert!(entry.billable);
    assert_eq!(
        (message.category, entry.pricing_type),
        (PricingCategory::Service, Some(PricingType::Regular))
    );
    assert_eq!(message.era, Era::PaidService);
    assert!(message.rules.contains(&Rule::R80));
    assert!(matches!(&message.charge, Charge::Allowance(pool) if &*pool.scope == PHONE));
}

#[test]
fn d9_the_allowance_resets_at_the_accounts_local_month() {
    // 2026-11-01 00:00 in São Paulo is 03:00Z: a reply at 02:30Z is still October there.
    let mut g = Given::at(1_793_502_000 - 3 * HOUR).settings("America/Sao_Paulo");
    g.user_message(0.0);
    let october = g.free_form(2.5);
    let november = g.free_form(3.5);
    let then = g.fold_with(LedgerConfig { allowance_limit: Some(1), ..LedgerConfig::default() });
    let month = |id: &str| then.message(id).1.context.local_month.to_string();
    assert_eq!((month(&october).as_str(), month(&november).as_str()), ("2026-10", "2026-11"));
    // Each is the first of its month: both free, no roll-over needed or given.
    assert!(!then.message(&october).0.billable && !then.message(&november).0.billable);
}

#[test]
fn d9_a_waba_wide_scope_is_a_setting() {
    // Two numbers of one WABA, one reply each; with a limit of 1 per scope.
    let (g, ids) = replies(ERA5, 1);
    let mut other = Given::at(ERA5).for_user("5511900000002");
    other.user_message(0.0);
    let mut events = g.events.clone();
    let second = other.free_form(2.0);
    // The second number: rewrite the contact's phone number id.
    for mut event in other.events {
        if let Some(contact) = &mut event.contact {
            contact.phone_number_id = "PHONE-2".into();
        }
        events.push(event);
    }
    let mut both = g.clone();
    both.events = events;
    let per_number = both.fold_with(LedgerConfig { allowance_limit: Some(1), ..LedgerConfig::default() });
    let billed = |then: &Folded, id: &str| {
        then.messages().into_iter().find(|(_, m)| m.message_id.as_str() == id).expect("billed").0.billable
    };
    assert!(!billed(&per_number, &ids[0]) && !billed(&per_number, &second), "one allowance each");
    let rules = RuleSettings { service_allowance_scope: AllowanceScope::Waba, ..RuleSettings::default() };
    let per_waba = both.fold_with(LedgerConfig { rules, allowance_limit: Some(1) });
    assert!(!billed(&per_waba, &ids[0]) && billed(&per_waba, &second), "one allowance for the WABA");
}

#[test]
fn d9b_utility_in_the_window_is_free_on_sept_30_and_charged_from_oct_1() {
    // WABA tz UTC: the user writes 2026-09-30 20:00.
    let mut g = Given::at(OCT_1_2026_UTC - 4 * HOUR).settings("UTC");
    g.user_message(0.0);
    let before = g.template(4.0 - 1.0 / 60.0, Utility); // 23:59
    let after = g.template(4.0 + 1.0 / 60.0, Utility); // 00:01, the window still open
    let then = g.fold();
    let (entry, message) = then.message(&before);
    assert_eq!(entry.free_reason, Some(FreeReason::CustomerServiceWindow), "R51");
    assert_eq!(message.era, Era::PerMessage);
    let (entry, message) = then.message(&after);
    assert!(entry.billable, "R81");
    assert_eq!((message.category, message.era), (PricingCategory::Utility, Era::PaidService));
    assert!(message.rules.contains(&Rule::R81));
}

#[test]
fn the_era5_switch_is_local_midnight_in_each_waba_time_zone() {
    // The same instants, 2026-10-01 02:00Z and 04:00Z, in UTC and in São Paulo (UTC-03:00).
    for (zone, era_at_2z, era_at_4z) in [
        ("UTC", Era::PaidService, Era::PaidService),
        ("America/Sao_Paulo", Era::PerMessage, Era::PaidService),
        ("Asia/Kolkata", Era::PaidService, Era::PaidService),
    ] {
        let mut g = Given::at(OCT_1_2026_UTC).settings(zone);
        g.user_message(0.0);
        let at_2z = g.template(2.0, Utility);
        let service_2z = g.free_form(2.1);
        let at_4z = g.template(4.0, Utility);
        let then = g.fold();
        assert_eq!(then.message(&at_2z).1.era, era_at_2z, "{zone}");
        assert_eq!(then.message(&at_4z).1.era, era_at_4z, "{zone}");
        let in_era5 = era_at_2z == Era::PaidService;
        assert_eq!(then.message(&at_2z).0.billable, in_era5, "{zone}: R51 before, R81 after");
        let (entry, _) = then.message(&service_2z);
        let expected = if in_era5 { FreeReason::FreeTier } else { FreeReason::NonTemplate };
        assert_eq!(entry.free_reason, Some(expected), "{zone}");
    }
    // Kolkata (UTC+05:30) was already in October at 2026-09-30 18:30Z.
    let mut g = Given::at(OCT_1_2026_UTC - 5 * HOUR - HOUR / 2).settings("Asia/Kolkata");
    g.user_message(0.0);
    let early = g.template(0.5, Utility);
    assert!(g.fold().message(&early).0.billable);
}

#[test]
fn d9c_in_an_entry_point_window_everything_is_free_and_the_allowance_untouched() {
    let mut g = Given::at(ERA5);
    g.user_message_via_ad(0.0);
    let reply = g.free_form(1.0);
    let service = g.free_form(30.0);
    let utility = g.template(40.0, Utility);
    let marketing = g.template(70.0, Marketing);
    let after = g.free_form(74.0);
    // With an allowance of one service message, the one after the window is still free: the
    // window's messages drew nothing from it.
    let then = g.fold_with(LedgerConfig { allowance_limit: Some(1), ..LedgerConfig::default() });
    for id in [&reply, &service, &utility, &marketing] {
        let (entry, _) = then.message(id);
        assert_eq!(entry.free_reason, Some(FreeReason::EntryPoint), "{id}");
        assert_eq!(entry.pricing_type, Some(PricingType::FreeEntryPoint));
    }
    assert!(then.message(&reply).1.rules.contains(&Rule::R82), "a window opened from 2026-09-28 cites R82");
    // The window lasts 72 h by default (R82): h74 is outside, free within the allowance.
    let (entry, _) = then.message(&after);
    assert_eq!(entry.free_reason, Some(FreeReason::FreeTier));
}

#[test]
fn r82_the_window_length_from_2026_09_28_is_a_setting() {
    let mut g = Given::at(ERA5);
    g.user_message_via_ad(0.0);
    g.free_form(1.0);
    let day_five = g.template(100.0, Marketing);
    let day_eight = g.template(170.0, Marketing);
    let seven_days = RuleSettings { fep_window_hours_from_2026_09_28: 168, ..RuleSettings::default() };
    let then = g.fold_with(LedgerConfig { rules: seven_days, allowance_limit: None });
    assert_eq!(then.message(&day_five).0.free_reason, Some(FreeReason::EntryPoint));
    assert!(then.message(&day_eight).0.billable, "the window opened at h1 closes at h169");
    // Before 2026-09-28 the window is 72 h whatever the setting says.
    let mut g = Given::at(ERA4);
    g.user_message_via_ad(0.0);
    g.free_form(1.0);
    let day_five = g.template(100.0, Marketing);
    let then = g.fold_with(LedgerConfig { rules: seven_days, allowance_limit: None });
    assert!(then.message(&day_five).0.billable);
}

const GROUP: &str = "120363000000000001";

#[test]
fn d9d_a_group_service_message_delivered_to_five_counts_five() {
    let mut g = Given::at(ERA5).for_user(GROUP);
    g.user_message(0.0);
    let group_reply = g.send(1.0, free_form_content());
    for n in 0..5 {
        g.participant_status(&group_reply, &format!("91987654320{n}"), DeliveryStatus::Delivered, 1.0);
    }
    let one_to_one = g.free_form(2.0);
    // An allowance of six: the group's five units and the next message fit; a limit of five
    // leaves the next one charged.
    let fits = g.fold_with(LedgerConfig { allowance_limit: Some(6), ..LedgerConfig::default() });
    let (entry, message) = fits.message(&group_reply);
    assert_eq!((message.category, message.quantity()), (PricingCategory::GroupService, 5));
    assert_eq!(entry.free_reason, Some(FreeReason::FreeTier));
    assert!(message.rules.contains(&Rule::R80) && message.rules.contains(&Rule::R59));
    assert!(!fits.message(&one_to_one).0.billable);
    let full = g.fold_with(LedgerConfig { allowance_limit: Some(5), ..LedgerConfig::default() });
    assert!(!full.message(&group_reply).0.billable);
    assert!(full.message(&one_to_one).0.billable, "the five participants used the allowance");
    let used = full.ledger.eligibility(&ledger_core::WabaId::from(WABA), &g.contact(), g.time(3.0));
    assert_eq!((used.free_form.allowance_used, used.free_form.allowance_limit), (Some(6), Some(5)));
}

#[test]
fn the_allowance_full_at_1000_a_late_999th_delivery_moves_exactly_one_charge() {
    let (g, ids) = replies(ERA5, 1_001);
    // Every event in time order except the 999th message's delivery, which arrives last.
    let late_status = format!("status:{}:delivered:", ids[998]);
    let (late, mut events): (Vec<_>, Vec<_>) =
        g.events.iter().cloned().partition(|e| e.event_id.as_str().starts_with(&late_status));
    assert_eq!(late.len(), 1);
    let mut ledger = ledger_core::Ledger::new(LedgerConfig::default());
    let mut journal = Vec::new();
    for event in events.drain(..) {
        ledger.apply(event, &mut journal).expect("valid");
    }
    let mut tail = Vec::new();
    ledger.apply(late[0].clone(), &mut tail).expect("valid");
    // The late 999th is posted free; the 1,001st, free until now, is reversed and re-posted
    // charged; nothing else moves.
    let touched: Vec<(String, bool, bool)> = tail
        .iter()
        .map(|e| match &*e.fact {
            ledger_core::Fact::MessageBilled(m) => {
                (m.message_id.to_string(), e.reverses.is_some(), e.billable)
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        touched,
        vec![
            (ids[998].clone(), false, false),
            (ids[1_000].clone(), true, false),
            (ids[1_000].clone(), false, true)
        ]
    );
    // The same standing verdicts as the fold in time order (entry ids differ: a re-posting
    // has its own id).
    let verdicts = |entries: Vec<ledger_core::Entry>| -> Vec<_> {
        entries.into_iter().map(|e| (e.fact.clone(), e.billable, e.free_reason)).collect()
    };
    assert_eq!(verdicts(ledger.live_entries()), verdicts(g.fold().entries()));
}

#[test]
fn d9e_a_meta_business_agent_reply_is_counted_apart_and_not_from_the_allowance() {
    let mut g = Given::at(ERA5);
    g.user_message(0.0);
    // The business's send record marks the reply as Meta Business Agent's, with its tokens.
    let agent = g.send(1.0, free_form_content());
    if let Some(ledger_core::EventKind::SendRecord(record)) = g.events.last_mut().map(|e| &mut e.kind) {
        record.meta_business_agent = Some(ledger_core::BusinessAgentUse { tokens: Some(1_834) });
    }
    g.status(&agent, DeliveryStatus::Delivered, 1.0);
    let human = g.free_form(2.0);
    let then = g.fold_with(LedgerConfig { allowance_limit: Some(1), ..LedgerConfig::default() });
    let (entry, message) = then.message(&agent);
    assert_eq!(message.category, PricingCategory::MetaBusinessAgent);
    assert!(entry.billable, "R83b: charged per token, not free in the window");
    assert_eq!(message.tokens, Some(1_834));
    assert!(matches!(message.charge, Charge::Billable), "never an allowance claim");
    assert!(message.rules.contains(&Rule::R83b));
    // The allowance of one is still whole for the human reply.
    assert_eq!(then.message(&human).0.free_reason, Some(FreeReason::FreeTier));
}

#[test]
fn r83b_an_agent_reply_inside_an_entry_point_window_is_still_charged() {
    let mut g = Given::at(ERA5);
    g.user_message_via_ad(0.0);
    g.free_form(1.0);
    let agent = g.send(2.0, free_form_content());
    if let Some(ledger_core::EventKind::SendRecord(record)) = g.events.last_mut().map(|e| &mut e.kind) {
        record.meta_business_agent = Some(ledger_core::BusinessAgentUse::default());
    }
    g.status(&agent, DeliveryStatus::Delivered, 2.0);
    let then = g.fold();
    let (entry, message) = then.message(&agent);
    assert!(entry.billable);
    assert_eq!((message.category, message.tokens), (PricingCategory::MetaBusinessAgent, None));
}

#[test]
fn r83c_an_ai_provider_message_follows_the_providers_report_not_service_pricing() {
    let mut g = Given::at(ERA5);
    g.user_message(0.0);
    let id = g.send(1.0, free_form_content());
    let report = |billable: bool| ledger_core::ReportedPricing {
        pricing_model: Some(ledger_core::PricingModel::Pmp),
        category: Some(ledger_core::ReportedCategory::parse("general_purpose_ai")),
        pricing_type: Some(if billable { PricingType::Regular } else { PricingType::FreeCustomerService }),
        billable: Some(billable),
        ..ledger_core::ReportedPricing::default()
    };
    g.status_reported(&id, DeliveryStatus::Delivered, 1.0, Some(report(true)));
    let then = g.fold_with(LedgerConfig { allowance_limit: Some(0), ..LedgerConfig::default() });
    let (entry, message) = then.message(&id);
    assert_eq!(message.category, PricingCategory::GeneralPurposeAi);
    assert!(entry.billable && matches!(message.charge, Charge::Billable));
    assert!(message.rules.contains(&Rule::R83c));
}
