//! The spec's documented scenarios S1–S10 and S13 and derived scenarios D1–D8 (billing-rules.md §6),
//! each as given / when / then over the pure fold. Times are hours from T0.

mod common;

use common::*;
use ledger_core::{
    Charge, DeliveryStatus, FreeReason, PricingCategory, PricingModel, PricingType, ReportedCategory,
    ReportedPricing,
    TemplateCategory::{Authentication, Marketing, Utility},
};

fn conv(category: &str, open: f64, close: f64, billable: bool, free: Option<&str>) -> Conv {
    (category.to_owned(), open, close, billable, free.map(str::to_owned))
}

// S1 — template categories (R20, R21, R51).

fn s1(t0: i64) -> Given {
    let mut g = Given::at(t0);
    g.template(0.0, Marketing);
    g.template(4.0, Utility);
    g.template(10.0, Utility);
    g
}

#[test]
fn s1_template_categories_open_one_conversation_each_in_era2() {
    let then = s1(ERA2).fold();
    assert_eq!(
        then.conversations(),
        vec![conv("marketing", 0.0, 24.0, true, None), conv("utility", 4.0, 28.0, true, None)]
    );
    assert_eq!(then.billable(), 2);
}

#[test]
fn s1_template_categories_in_era3_are_unchanged() {
    let then = s1(ERA3).fold();
    assert_eq!(then.billable_by_category(), vec![(s("marketing"), 1), (s("utility"), 1)]);
}

#[test]
fn s1_under_per_message_pricing_charges_each_template() {
    let then = s1(ERA4).fold();
    assert!(then.conversations().is_empty());
    assert_eq!(then.billable_by_category(), vec![(s("marketing"), 1), (s("utility"), 2)]);
}

// S2 — service conversation opening (R22, R26, R40).

fn s2(t0: i64) -> Given {
    let mut g = Given::at(t0);
    g.template(0.0, Marketing);
    g.user_message(4.0);
    g.free_form(5.0);
    g.free_form(25.0);
    g.free_form(26.0);
    g
}

#[test]
fn s2_service_conversation_opens_after_marketing_expires_era2() {
    let then = s2(ERA2).fold();
    // The service conversation is the WABA's first of the month: inside the free tier (R26).
    assert_eq!(
        then.conversations(),
        vec![conv("marketing", 0.0, 24.0, true, None), conv("service", 25.0, 49.0, false, Some("FreeTier"))]
    );
    let (_, h5) = then.messages().into_iter().find(|(_, m)| then.h(m.delivered_at) == 5.0).expect("h5");
    assert_eq!(h5.category, PricingCategory::Marketing, "h5 joins the marketing conversation");
}

#[test]
fn s2_service_conversations_are_free_in_era3() {
    let then = s2(ERA3).fold();
    assert_eq!(
        then.conversations(),
        vec![
            conv("marketing", 0.0, 24.0, true, None),
            conv("service", 25.0, 49.0, false, Some("FreeService"))
        ]
    );
    assert_eq!(then.billable(), 1);
}

#[test]
fn s2_under_per_message_pricing_only_marketing_is_charged() {
    let then = s2(ERA4).fold();
    assert_eq!(then.billable_by_category(), vec![(s("marketing"), 1)]);
    let free: Vec<_> = then.messages().into_iter().filter(|(e, _)| !e.billable).collect();
    assert_eq!(free.len(), 3);
    for (entry, message) in free {
        assert_eq!(entry.pricing_type, Some(PricingType::FreeCustomerService));
        assert_eq!(message.category, PricingCategory::Service);
    }
}

// S3 — free entry point (R25, R1, R2).

#[test]
fn s3_free_entry_point_conversation_lasts_72h_and_is_not_billed() {
    // Day D = 2024-03-04; 10:00 user via ad, 22:00 template delivered.
    let mut g = Given::at(ERA2);
    g.user_message_via_ad(10.0);
    g.template(22.0, Marketing);
    g.template(22.0 + 48.0, Utility);
    let then = g.fold();
    assert_eq!(
        then.conversations(),
        vec![conv("referral_conversion", 22.0, 94.0, false, Some("EntryPoint"))]
    );
    assert_eq!(then.billable(), 0);
    // Free-form only until D+1 10:00 (R2), though the entry point window stays open.
    let before = then.eligibility(33.0);
    assert!(before.free_form.allowed);
    assert_eq!(before.customer_service_window_until.map(|t| then.h(t)), Some(34.0));
    let after = then.eligibility(35.0);
    assert!(!after.free_form.allowed);
    assert_eq!(after.entry_point_window_until.map(|t| then.h(t)), Some(94.0));
    assert_eq!(after.marketing.charge, Some(Charge::Free(FreeReason::PerConversation)));
}

// S4 — same-category vs other-category template (R21, R23).

#[test]
fn s4_same_category_joins_other_category_opens_a_second_conversation() {
    let mut g = Given::at(ERA2);
    g.template(0.0, Authentication);
    g.template(1.0, Authentication);
    g.template(2.0, Marketing);
    let then = g.fold();
    assert_eq!(
        then.conversations(),
        vec![conv("authentication", 0.0, 24.0, true, None), conv("marketing", 2.0, 26.0, true, None)]
    );
    assert_eq!(then.eligibility(3.0).open_conversations.len(), 2, "two conversations open at once");
}

// S5 — service conversation conditions (R22).

#[test]
fn s5a_free_form_inside_any_open_conversation_opens_nothing() {
    let mut g = Given::at(ERA2);
    g.template(0.0, Marketing);
    g.user_message(0.5);
    g.free_form(1.0);
    g.free_form(2.0);
    let then = g.fold();
    assert_eq!(then.conversations(), vec![conv("marketing", 0.0, 24.0, true, None)]);
}

#[test]
fn s5b_free_form_reply_with_no_conversation_opens_a_service_conversation() {
    let mut g = Given::at(ERA2);
    g.user_message(0.0);
    g.free_form(1.0);
    let then = g.fold();
    let conversations = then.conversation_facts();
    assert_eq!(conversations.len(), 1);
    let (entry, opened) = &conversations[0];
    assert_eq!(opened.category.as_str(), "service");
    assert!(matches!(opened.charge, Charge::Allowance(_)), "billable unless within the free tier (R26)");
    assert_eq!(entry.free_reason, Some(FreeReason::FreeTier));
}

// S6 — "only one conversation" (R21, R22).

#[test]
fn s6a_several_utility_templates_within_24h_are_one_conversation() {
    let mut g = Given::at(ERA2);
    for h in [0.0, 3.0, 9.0, 23.5] {
        g.template(h, Utility);
    }
    let then = g.fold();
    assert_eq!(then.conversations(), vec![conv("utility", 0.0, 24.0, true, None)]);
    assert_eq!(then.messages().len(), 4);
}

#[test]
fn s6b_free_form_messages_join_the_open_conversation() {
    let mut g = Given::at(ERA2);
    g.template(0.0, Utility);
    g.user_message(0.5);
    g.free_form(1.0);
    g.free_form(2.0);
    let then = g.fold();
    assert_eq!(then.conversations().len(), 1);
}

// S7 — "multiple conversations" (R21, R23).

#[test]
fn s7a_utility_template_during_marketing_opens_utility() {
    let mut g = Given::at(ERA2);
    g.template(0.0, Marketing);
    g.template(5.0, Utility);
    let then = g.fold();
    assert_eq!(then.billable_by_category(), vec![(s("marketing"), 1), (s("utility"), 1)]);
}

#[test]
fn s7b_utility_template_during_service_opens_utility() {
    let mut g = Given::at(ERA2);
    g.user_message(0.0);
    g.free_form(1.0);
    g.template(2.0, Utility);
    let then = g.fold();
    let categories: Vec<String> = then.conversations().into_iter().map(|c| c.0).collect();
    assert_eq!(categories, vec![s("service"), s("utility")]);
}

// S8 — PMP charge example (R51, R52).

#[test]
fn s8_per_message_charge_example() {
    let mut g = Given::at(ERA4);
    let marketing = g.template(0.0, Marketing);
    g.user_message(2.0);
    let text = g.free_form(3.0);
    let utility_in_window = g.template(4.0, Utility);
    let utility_outside = g.template(30.0, Utility);
    let then = g.fold();
    assert_eq!(then.messages().len(), 4);
    assert_eq!(then.billable_by_category(), vec![(s("marketing"), 1), (s("utility"), 1)]);
    let (entry, m) = then.message(&text);
    assert_eq!(
        (entry.pricing_type, m.category),
        (Some(PricingType::FreeCustomerService), PricingCategory::Service)
    );
    let (entry, m) = then.message(&utility_in_window);
    assert_eq!(
        (entry.pricing_type, m.category),
        (Some(PricingType::FreeCustomerService), PricingCategory::Utility)
    );
    assert_eq!(entry.free_reason, Some(FreeReason::CustomerServiceWindow));
    assert!(then.message(&marketing).0.billable);
    assert!(then.message(&utility_outside).0.billable);
}

// S9 — PMP per-category counting.

#[test]
fn s9_marketing_and_two_utility_without_window_are_three_charges() {
    let mut g = Given::at(ERA4);
    g.template(0.0, Marketing);
    g.template(1.0, Utility);
    g.template(2.0, Utility);
    assert_eq!(g.fold().billable_by_category(), vec![(s("marketing"), 1), (s("utility"), 2)]);
}

#[test]
fn s9_utility_inside_window_is_free() {
    let mut g = Given::at(ERA4);
    g.template(0.0, Marketing);
    g.user_message(0.5);
    g.template(1.0, Utility);
    g.template(2.0, Utility);
    assert_eq!(g.fold().billable_by_category(), vec![(s("marketing"), 1)]);
}

// S10 — July 2025 transition (R50, R56, Q12).

#[test]
fn s10_utility_conversation_spanning_the_switch_absorbs_utility_until_it_expires() {
    // 2025-06-30 20:00 UTC: a utility conversation opens under CBP (era 3).
    let mut g = Given::at(1_751_241_600 + 20 * HOUR);
    let opener = g.template(0.0, Utility);
    let spanning = g.template(6.0, Utility); // 2025-07-01 02:00, conversation still open
    let marketing = g.template(5.0, Marketing); // Q12: marketing does not span the switch
    let after = g.template(25.0, Utility); // conversation expired at h24
    let then = g.fold();
    assert_eq!(then.conversations(), vec![conv("utility", 0.0, 24.0, true, None)]);
    let (entry, m) = then.message(&spanning);
    assert_eq!(m.pricing_model, PricingModel::Cbp);
    assert_eq!(m.conversation.as_ref().map(|c| c.as_str()), Some(opener.as_str()));
    assert!(!entry.billable);
    let (entry, m) = then.message(&after);
    assert_eq!(
        (m.pricing_model, entry.pricing_type, entry.billable),
        (PricingModel::Pmp, Some(PricingType::Regular), true)
    );
    assert!(then.message(&marketing).0.billable);
}

// D1 — an entry point closes a paid marketing conversation (R25, E7).

#[test]
fn d1_entry_point_closes_marketing_conversation_whose_charge_stands() {
    let mut g = Given::at(ERA2);
    g.template(0.0, Marketing);
    g.user_message_via_ad(1.0);
    g.template(2.0, Marketing); // the business's reply
    g.template(3.0, Marketing);
    g.template(80.0, Marketing);
    let then = g.fold();
    assert_eq!(
        then.conversations(),
        vec![
            conv("marketing", 0.0, 24.0, true, None),
            conv("referral_conversion", 2.0, 74.0, false, Some("EntryPoint")),
            conv("marketing", 80.0, 104.0, true, None),
        ]
    );
    let during = then.eligibility(3.5);
    assert_eq!(during.open_conversations.len(), 0, "the marketing conversation was closed at h2");
    assert_eq!(during.entry_point_window_until.map(|t| then.h(t)), Some(74.0));
}

// D2 — no reply within 24 h (R25, R53, Q3).

#[test]
fn d2_no_reply_within_24h_means_no_entry_point_era2() {
    let mut g = Given::at(ERA2);
    g.user_message_via_ad(0.0);
    g.template(25.0, Marketing);
    let then = g.fold();
    assert_eq!(then.conversations(), vec![conv("marketing", 25.0, 49.0, true, None)]);
}

#[test]
fn d2_no_reply_within_24h_means_a_charged_message_era4() {
    let mut g = Given::at(ERA4);
    g.user_message_via_ad(0.0);
    let late = g.template(25.0, Marketing);
    let then = g.fold();
    assert!(then.conversations().is_empty());
    assert!(then.message(&late).0.billable);
}

// D3 — utility blocks service (R21, R22).

#[test]
fn d3_utility_template_absorbs_later_free_form() {
    let mut g = Given::at(ERA2);
    g.user_message(-1.0);
    g.template(0.0, Utility);
    g.free_form(1.0);
    let then = g.fold();
    assert_eq!(then.conversations(), vec![conv("utility", 0.0, 24.0, true, None)]);
    assert_eq!(then.billable(), 1);
}

// D4 — never delivered (R4, Q20).

#[test]
fn d4_failed_template_is_never_charged_even_with_conversation_on_sent() {
    let mut g = Given::at(ERA2);
    let id = g.send(0.0, template(Marketing));
    let announced = ReportedPricing {
        pricing_model: Some(PricingModel::Cbp),
        category: Some(ReportedCategory::Marketing),
        billable: Some(true),
        conversation_id: Some("conv-m-1".into()),
        conversation_origin: Some(ReportedCategory::Marketing),
        ..ReportedPricing::default()
    };
    g.status_reported(&id, DeliveryStatus::Sent, 0.0, Some(announced));
    g.status(&id, DeliveryStatus::Failed, 0.1);
    let then = g.fold();
    assert!(then.entries().is_empty());
    assert_eq!(then.status_of(&id), Some(DeliveryStatus::Failed));
}

// D5 — free-tier month boundary in the WABA time zone (R26), tested in tz_boundaries.rs.

// D6 — PMP entry point with a closed customer service window (R53, R2).

#[test]
fn d6_per_message_entry_point_window_outlives_the_service_window() {
    let mut g = Given::at(ERA4);
    g.user_message_via_ad(0.0);
    let reply = g.template(1.0, Marketing);
    let inside = g.template(40.0, Marketing);
    let outside = g.template(75.0, Marketing);
    let then = g.fold();
    assert_eq!(then.conversations(), vec![conv("referral_conversion", 1.0, 73.0, false, Some("EntryPoint"))]);
    for id in [&reply, &inside] {
        let (entry, _) = then.message(id);
        assert_eq!((entry.billable, entry.pricing_type), (false, Some(PricingType::FreeEntryPoint)));
    }
    assert!(then.message(&outside).0.billable);
    let at41 = then.eligibility(41.0);
    assert!(!at41.free_form.allowed, "the service window closed at h24 (R2)");
    assert_eq!(at41.marketing.charge, Some(Charge::Free(FreeReason::EntryPoint)));
}

// D7 — authentication inside the service window (R51).

#[test]
fn d7_authentication_is_charged_inside_the_service_window() {
    let mut g = Given::at(ERA4);
    g.user_message(0.0);
    let auth = g.template(1.0, Authentication);
    let then = g.fold();
    let (entry, m) = then.message(&auth);
    assert!(entry.billable);
    assert_eq!(m.category, PricingCategory::Authentication);
}

// D8 — out-of-order statuses (W1, W2, W4).

#[test]
fn d8_out_of_order_statuses_charge_once_at_the_earliest_delivery() {
    let mut g = Given::at(ERA4);
    let id = g.send(0.0, template(Marketing));
    let t = |s: i64| s as f64 / HOUR as f64;
    g.status(&id, DeliveryStatus::Read, t(5));
    g.status(&id, DeliveryStatus::Delivered, t(3));
    g.status(&id, DeliveryStatus::Sent, t(1));
    g.status(&id, DeliveryStatus::Read, t(5)); // re-delivered webhook
    let then = g.fold();
    let messages = then.messages();
    assert_eq!(messages.len(), 1, "one charge event");
    assert_eq!(messages[0].1.delivered_at.0 - then.t0, 3);
    assert_eq!(then.status_of(&id), Some(DeliveryStatus::Read));
    // The read-first arrival was posted, then corrected: reversal + new entry, never an edit.
    let posts = then.journal.iter().filter(|e| e.reverses.is_none()).count();
    let reversals = then.journal.iter().filter(|e| e.reverses.is_some()).count();
    assert_eq!((posts, reversals), (2, 1));
}

// S13 — groups (R59). The pair's user is the group id; statuses name the participant.

const GROUP: &str = "120363000000000001";

fn participant(n: usize) -> String {
    format!("91987654320{n}")
}

/// A marketing template to a group of five, delivered to the first `reached` participants (the
/// others' statuses stop at `sent`).
fn s13(reached: usize) -> (Given, String) {
    let mut g = Given::at(ERA4).for_user(GROUP);
    let id = g.send(0.0, template(Marketing));
    for n in 0..5 {
        let status = if n < reached { DeliveryStatus::Delivered } else { DeliveryStatus::Sent };
        g.participant_status(&id, &participant(n), status, 0.01 * n as f64);
    }
    (g, id)
}

#[test]
fn s13_group_marketing_is_charged_once_per_participant_delivered_to() {
    for reached in [5, 4] {
        let (g, id) = s13(reached);
        let then = g.fold();
        let (entry, message) = then.message(&id);
        assert!(entry.billable);
        assert_eq!(message.category, PricingCategory::GroupMarketing);
        assert_eq!(entry.pricing_type, Some(PricingType::Regular));
        assert_eq!(message.quantity(), reached as u64, "delivered to {reached}");
        let expected: Vec<String> = (0..reached).map(participant).collect();
        let got: Vec<String> = message.participants.iter().map(|p| p.to_string()).collect();
        assert_eq!(got, expected);
        assert!(message.rules.contains(&ledger_core::rules::Rule::R59));
        // The charge instant is the first participant's delivery (R4).
        assert_eq!(then.h(message.delivered_at), 0.0);
        // Each participant's charge rests on the status proving its delivery.
        assert_eq!(message.evidence.len(), 1 + reached);
        let summary = ledger_core::explain(&entry).summary;
        assert!(summary.contains(&format!("to {reached} participants")), "{summary}");
        assert!(summary.ends_with("billable"), "{summary}");
    }
}

#[test]
fn s13_a_participant_delivered_late_reposts_the_message_with_one_more_charge() {
    let (mut g, id) = s13(4);
    // Later traffic in the group, then the fifth participant's delivery arrives.
    g.user_message(2.0);
    g.free_form(3.0);
    g.participant_status(&id, &participant(4), DeliveryStatus::Delivered, 5.0);
    let then = g.fold();
    let (_, message) = then.message(&id);
    assert_eq!(message.quantity(), 5);
    assert_eq!(then.h(message.delivered_at), 0.0);
    // Each participant's delivery reversed the posting before it and re-posted the message
    // (never an edit): the late fifth reverses the four-participant posting.
    let of_message: Vec<_> = then
        .journal
        .iter()
        .filter_map(|e| match &*e.fact {
            ledger_core::Fact::MessageBilled(m) if m.message_id.as_str() == id => {
                Some((e.reverses.is_some(), m.quantity()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        of_message,
        vec![
            (false, 1),
            (true, 1),
            (false, 2),
            (true, 2),
            (false, 3),
            (true, 3),
            (false, 4),
            (true, 4),
            (false, 5)
        ]
    );
    // Same answer as when every status arrived in time order.
    let mut in_order = g.events.clone();
    in_order.sort_by_key(|e| e.event_time);
    let mut reference = g.clone();
    reference.events = in_order;
    let reference = reference.fold();
    assert_eq!(reference.message(&id).1, message);
}

#[test]
fn r59_any_participant_message_opens_the_group_service_window() {
    let mut g = Given::at(ERA4).for_user(GROUP);
    g.user_message(0.0);
    let in_window = g.send(1.0, template(Utility));
    g.participant_status(&in_window, &participant(0), DeliveryStatus::Delivered, 1.0);
    g.participant_status(&in_window, &participant(1), DeliveryStatus::Read, 1.1);
    let reply = g.send(2.0, ledger_core::SendContent::NonTemplate { kind: "text".into() });
    g.participant_status(&reply, &participant(0), DeliveryStatus::Delivered, 2.0);
    let outside = g.send(30.0, template(Utility));
    g.participant_status(&outside, &participant(0), DeliveryStatus::Delivered, 30.0);
    g.participant_status(&outside, &participant(1), DeliveryStatus::Delivered, 30.0);
    let then = g.fold();

    let (entry, message) = then.message(&in_window);
    assert_eq!(message.category, PricingCategory::GroupUtility);
    assert_eq!(entry.free_reason, Some(FreeReason::CustomerServiceWindow));
    assert_eq!(entry.pricing_type, Some(PricingType::FreeGroupCustomerService));
    assert_eq!(message.quantity(), 2, "read proves delivery (W4)");

    let (entry, message) = then.message(&reply);
    assert_eq!(message.category, PricingCategory::GroupService);
    assert_eq!(entry.pricing_type, Some(PricingType::FreeGroupCustomerService));

    let (entry, message) = then.message(&outside);
    assert_eq!(message.category, PricingCategory::GroupUtility);
    assert!(entry.billable);
    assert_eq!(entry.pricing_type, Some(PricingType::Regular));
    assert_eq!(message.quantity(), 2);
}
