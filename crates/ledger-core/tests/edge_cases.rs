//! Edge cases beyond the documented scenarios: classification sources, held statuses, the
//! provider's entry point outcome, era 1 and era 5, and idempotent ingestion.

mod common;

use common::*;
use ledger_core::fact::ClassSource;
use ledger_core::{
    Charge, DeliveryStatus, EventKind, FreeReason, Ingested, LedgerConfig, PricingCategory, PricingModel,
    PricingType, ReportedCategory, ReportedPricing, SendContent,
    TemplateCategory::{Marketing, Utility},
    Timestamp,
};

fn reported(category: ReportedCategory, pricing_type: PricingType) -> ReportedPricing {
    ReportedPricing {
        pricing_model: Some(PricingModel::Pmp),
        category: Some(category),
        pricing_type: Some(pricing_type),
        ..ReportedPricing::default()
    }
}

#[test]
fn r8_r90_category_change_in_force_at_send_time_wins_over_the_send_record() {
    let mut g = Given::at(ERA4);
    let before = g.template(1.0, Utility);
    let after = g.template(3.0, Utility);
    let change = category_change(g.time(2.0), "utility_template", Marketing);
    g.events.push(change);
    let then = g.fold();
    let (_, m) = then.message(&before);
    assert_eq!((m.category, m.classification.source), (PricingCategory::Utility, ClassSource::SendRecord));
    let (entry, m) = then.message(&after);
    assert_eq!(m.category, PricingCategory::Marketing);
    assert_eq!(m.classification.declared_category, Some(Utility), "the business's claim is kept");
    assert_eq!(m.classification.source, ClassSource::CategoryChange);
    assert!(entry.fact.rules().contains(&ledger_core::rules::Rule::R90));
    let change_id = format!("tcu-{}-marketing", g.time(2.0).0);
    assert!(entry.fact.evidence().iter().any(|e| e.as_str() == change_id));
}

#[test]
fn late_category_change_yields_reversal_and_new_entry() {
    let mut g = Given::at(ERA4);
    g.user_message(0.0);
    let id = g.template(3.0, Utility);
    let mut then = g.fold();
    assert!(!then.message(&id).0.billable, "utility inside the service window is free (R51)");
    let mut journal = Vec::new();
    then.ledger
        .apply(category_change(g.time(2.0), "utility_template", Marketing), &mut journal)
        .expect("valid");
    assert_eq!(journal.len(), 2);
    assert!(journal[0].reverses.is_some());
    assert!(journal[1].billable, "as marketing it is charged");
}

#[test]
fn w3_status_before_send_record_is_held_then_billed() {
    let mut g = Given::at(ERA4);
    let id = "wamid.HELD".to_owned();
    g.status(&id, DeliveryStatus::Delivered, 1.0);
    let held = g.fold();
    assert!(held.entries().is_empty(), "kind unknown: nothing billed yet, nothing dropped");
    assert_eq!(held.status_of(&id), Some(DeliveryStatus::Delivered));

    let mut record = Given::at(ERA4);
    let _ = record.send(0.0, template(Marketing));
    let mut send = record.events.pop().expect("send record");
    if let EventKind::SendRecord(r) = &mut send.kind {
        r.message_id = id.clone().into();
    }
    g.events.insert(0, send.clone());
    let in_order = g.fold();
    g.events.remove(0);
    g.events.push(send);
    let late = g.fold();
    assert_eq!(late.entries(), in_order.entries());
    assert!(late.message(&id).0.billable);
}

#[test]
fn provider_reported_category_classifies_until_a_send_record_corrects_it() {
    let mut g = Given::at(ERA4);
    let id = "wamid.REPORTED".to_owned();
    g.status_reported(
        &id,
        DeliveryStatus::Delivered,
        1.0,
        Some(reported(ReportedCategory::Marketing, PricingType::Regular)),
    );
    let mut then = g.fold();
    let (entry, m) = then.message(&id);
    assert!(entry.billable);
    assert_eq!(m.classification.source, ClassSource::ProviderReported);

    // The business's record says it was a free-form reply inside the window.
    let mut more = Given::at(ERA4);
    more.user_message(0.5);
    let _ = more.send(0.9, SendContent::NonTemplate { kind: "text".into() });
    let mut journal = Vec::new();
    for mut event in more.events {
        if let EventKind::SendRecord(r) = &mut event.kind {
            r.message_id = id.clone().into();
        }
        then.ledger.apply(event, &mut journal).expect("valid");
    }
    let (entry, m) = then.message(&id);
    assert!(!entry.billable);
    assert_eq!((m.category, m.classification.source), (PricingCategory::Service, ClassSource::SendRecord));
    assert_eq!(
        m.reported.as_ref().and_then(|r| r.category.clone()),
        Some(ReportedCategory::Marketing),
        "kept for reconciliation"
    );
}

#[test]
fn e8_provider_reporting_a_regular_reply_denies_the_entry_point() {
    let mut g = Given::at(ERA4);
    g.user_message_via_ad(0.0);
    let reply = g.send(1.0, template(Marketing));
    g.status_reported(
        &reply,
        DeliveryStatus::Delivered,
        1.0,
        Some(reported(ReportedCategory::Marketing, PricingType::Regular)),
    );
    let then = g.fold();
    assert!(then.conversations().is_empty());
    let (entry, _) = then.message(&reply);
    assert!(entry.billable);
    assert!(entry.fact.rules().contains(&ledger_core::rules::Rule::E8));
}

#[test]
fn provider_confirming_the_entry_point_keeps_it() {
    let mut g = Given::at(ERA4);
    g.user_message_via_ad(0.0);
    let reply = g.send(1.0, template(Marketing));
    let fep = reported(ReportedCategory::ReferralConversion, PricingType::FreeEntryPoint);
    g.status_reported(&reply, DeliveryStatus::Delivered, 1.0, Some(fep));
    assert_eq!(g.fold().message(&reply).0.pricing_type, Some(PricingType::FreeEntryPoint));
}

#[test]
fn a_message_sent_before_the_ad_click_is_not_the_reply() {
    let mut g = Given::at(ERA4);
    let crossing = g.template_sent_delivered(-0.5, 0.5, Marketing);
    g.user_message_via_ad(0.0);
    let reply = g.template(2.0, Marketing);
    let then = g.fold();
    assert!(then.message(&crossing).0.billable);
    assert_eq!(then.message(&reply).0.free_reason, Some(FreeReason::EntryPoint));
}

#[test]
fn r12_era1_conversation_type_follows_the_service_window() {
    let mut g = Given::at(ERA1);
    g.template(0.0, Marketing); // no window: business-initiated
    g.user_message(30.0);
    g.free_form(31.0); // reply inside the window: user-initiated
    g.template(32.0, Utility); // joins (R11)
    let then = g.fold();
    let conversations = then.conversations();
    assert_eq!(conversations.len(), 2);
    assert_eq!(
        (conversations[0].0.as_str(), conversations[1].0.as_str()),
        ("business_initiated", "user_initiated")
    );
    // Both within the first 1,000 of the month (R13).
    assert!(conversations.iter().all(|c| c.4.as_deref() == Some("FreeTier")));
}

#[test]
fn r13_era1_allowance_counts_every_conversation_type() {
    let mut g = Given::at(ERA1);
    for day in 0..3 {
        g.template(f64::from(day) * 25.0, Marketing);
    }
    let config = LedgerConfig { allowance_limit: Some(2), ..LedgerConfig::default() };
    let then = g.fold_with(config);
    let billable: Vec<bool> = then.conversations().iter().map(|c| c.3).collect();
    assert_eq!(billable, vec![false, false, true]);
}

#[test]
fn r14_era1_entry_point_before_march_2023_is_one_free_24h_conversation() {
    let mut g = Given::at(1_675_641_600); // 2023-02-06
    g.user_message_via_ad(0.0);
    g.template(1.0, Marketing);
    g.template(20.0, Marketing); // joins the free conversation
    g.template(26.0, Marketing); // a later conversation is charged
    let then = g.fold_with(LedgerConfig { allowance_limit: Some(0), ..LedgerConfig::default() });
    assert_eq!(
        then.conversations(),
        vec![
            (s("referral_conversion"), 1.0, 25.0, false, Some(s("EntryPoint"))),
            (s("business_initiated"), 26.0, 50.0, true, None),
        ]
    );
}

#[test]
fn r25_era1_from_march_2023_entry_point_is_a_72h_window() {
    let mut g = Given::at(ERA1B);
    g.user_message_via_ad(0.0);
    g.template(1.0, Marketing);
    g.template(60.0, Utility);
    let then = g.fold();
    assert_eq!(
        then.conversations(),
        vec![(s("referral_conversion"), 1.0, 73.0, false, Some(s("EntryPoint")))]
    );
}

#[test]
fn d9_era5_service_messages_beyond_the_allowance_are_charged_by_default() {
    let mut g = Given::at(ERA5);
    g.user_message(0.0);
    let ids: Vec<String> = (0..3).map(|i| g.free_form(1.0 + f64::from(i))).collect();
    let utility = g.template(5.0, Utility);
    let config = LedgerConfig { allowance_limit: Some(2), ..LedgerConfig::default() };
    let then = g.fold_with(config);
    let verdicts: Vec<bool> = ids.iter().map(|id| then.message(id).0.billable).collect();
    assert_eq!(verdicts, vec![false, false, true]);
    let (entry, m) = then.message(&ids[2]);
    assert_eq!((m.category, entry.pricing_type), (PricingCategory::Service, Some(PricingType::Regular)));
    assert!(matches!(&m.charge, Charge::Allowance(pool) if &*pool.scope == PHONE));
    assert!(then.message(&utility).0.billable, "R81: utility inside the window is charged in era 5");
}

#[test]
fn duplicate_event_is_exists_and_a_changed_one_is_flagged() {
    let mut g = Given::at(ERA4);
    let id = g.template(0.0, Marketing);
    let mut then = g.fold();
    let mut journal = Vec::new();
    let again = g.events[1].clone();
    assert_eq!(then.ledger.apply(again.clone(), &mut journal), Ok(Ingested::Exists));
    let mut changed = again;
    changed.event_time = Timestamp(changed.event_time.0 + 60);
    assert_eq!(then.ledger.apply(changed, &mut journal), Ok(Ingested::ExistsWithDifferent("event_time")));
    assert!(journal.is_empty(), "neither changes the ledger");
    assert!(then.message(&id).0.billable);
}

#[test]
fn invalid_events_are_rejected_with_a_reason() {
    let mut g = Given::at(ERA4);
    g.template(0.0, Marketing);
    let mut then = g.fold();
    let mut bad = g.events[0].clone();
    bad.contact = None;
    let error = then.ledger.apply(bad, &mut Vec::new()).expect_err("no contact");
    assert_eq!(error.to_string(), "a send_record event needs a contact (phone_number_id and user_id)");
    let mut settings = Given::at(ERA4).settings("Mars/Olympus").events;
    let error = then.ledger.apply(settings.remove(0), &mut Vec::new()).expect_err("zone");
    assert_eq!(error.to_string(), "time_zone \"Mars/Olympus\" is not an IANA time zone name");
}

#[test]
fn event_times_outside_2010_to_2100_are_refused_not_billed_in_1970() {
    let mut g = Given::at(ERA4);
    g.template(0.0, Marketing);
    let mut then = g.fold();
    // Year 294,000 (seconds), 1970 and the first instant of 2100 are refused; the bounds' inside
    // edges are taken.
    for (seconds, accepted) in [
        (9_215_000_000_000, false),
        (0, false),
        (1_262_303_999, false),
        (1_262_304_000, true),
        (4_102_444_799, true),
        (4_102_444_800, false),
    ] {
        let mut event = g.events[0].clone();
        event.event_id = format!("send:far-{seconds}").into();
        event.event_time = ledger_core::Timestamp(seconds);
        if let ledger_core::EventKind::SendRecord(record) = &mut event.kind {
            record.message_id = format!("far-{seconds}").into();
        }
        let outcome = then.ledger.apply(event, &mut Vec::new());
        assert_eq!(outcome.is_ok(), accepted, "{seconds}: {outcome:?}");
        if let Err(error) = outcome {
            assert!(error.to_string().contains("2010-01-01"), "{error}");
        }
    }
}

#[test]
fn explain_names_rules_and_events() {
    let mut g = Given::at(ERA4);
    g.user_message_via_ad(0.0);
    let reply = g.template(1.0, Marketing);
    let then = g.fold();
    let (entry, _) = then.message(&reply);
    let explanation = ledger_core::explain(&entry);
    let rules: Vec<&str> = explanation.rule_path.iter().map(|s| s.rule).collect();
    assert_eq!(rules, vec!["R53", "Q3", "R4"]);
    assert!(explanation
        .events
        .iter()
        .any(|e| e.as_str() == format!("status:{reply}:delivered:{}", g.time(1.0).0)));
    assert!(explanation.summary.contains("free (entry_point)"), "{}", explanation.summary);
}

fn pricing_report(g: &Given, message: &str, h: f64, report: ReportedPricing) -> ledger_core::Event {
    ledger_core::Event {
        event_id: format!("billing:{message}").into(),
        schema_version: 1,
        event_time: g.time(h),
        receive_time: g.time(h),
        provider: "test".into(),
        waba_id: WABA.into(),
        contact: Some(g.contact()),
        kind: EventKind::PricingReport(ledger_core::PricingReport {
            message_id: message.into(),
            reported: report,
        }),
    }
}

#[test]
fn a_pricing_report_outside_statuses_classifies_a_held_delivery() {
    let mut g = Given::at(ERA4);
    let id = "wamid.BILLED".to_owned();
    g.status(&id, DeliveryStatus::Delivered, 1.0);
    assert!(g.fold().entries().is_empty(), "held: nothing says what kind of message it was");
    let report = pricing_report(&g, &id, 1.5, reported(ReportedCategory::Utility, PricingType::Regular));
    g.events.push(report);
    let then = g.fold();
    let (entry, m) = then.message(&id);
    assert!(entry.billable, "a utility template outside the window is charged");
    assert_eq!(
        (m.category, m.classification.source),
        (PricingCategory::Utility, ClassSource::ProviderReported)
    );
}

#[test]
fn a_status_report_takes_precedence_over_a_separate_pricing_report() {
    let mut g = Given::at(ERA4);
    let id = "wamid.BOTH".to_owned();
    let on_status = reported(ReportedCategory::Marketing, PricingType::Regular);
    g.status_reported(&id, DeliveryStatus::Delivered, 1.0, Some(on_status));
    let separate = pricing_report(&g, &id, 2.0, reported(ReportedCategory::Utility, PricingType::Regular));
    g.events.push(separate);
    let (_, m) = g.fold().message(&id);
    assert_eq!(m.category, PricingCategory::Marketing);
}
