//! Month boundaries and era switches in the WABA's time zone (R26, R50, E5), and an account
//! whose settings arrive late (folded in UTC first, then re-folded).

mod common;

use common::*;
use ledger_core::{
    Event, Fact, FreeReason, Ledger, LedgerConfig, LocalMonth, TemplateCategory::Marketing, Timestamp,
};

/// One user writes and gets a free-form reply a minute later: one service conversation.
fn service_conversation(user: &str, at: i64) -> Vec<Event> {
    let mut g = Given::at(at).for_user(user);
    g.user_message(-1.0 / 60.0);
    g.free_form(0.0);
    g.events
}

fn fold_all(events: Vec<Event>) -> (Ledger, Vec<ledger_core::Entry>) {
    let mut ledger = Ledger::new(LedgerConfig::default());
    let mut journal = Vec::new();
    for event in events {
        ledger.apply(event, &mut journal).expect("valid");
    }
    (ledger, journal)
}

#[test]
fn d5_free_tier_month_boundary_in_sao_paulo() {
    // 2024-03, America/Sao_Paulo (UTC-3). 1,000 service conversations on 2024-03-10 …
    let march_10 = 1_710_039_600; // 2024-03-10 00:00 local = 03:00Z
    let mut events = Given::at(ERA2).settings("America/Sao_Paulo").events;
    for i in 0..1_000 {
        events.extend(service_conversation(&format!("5511900{i:05}"), march_10 + i64::from(i) * 60));
    }
    // … the 1,001st at 23:59 local on March 31 (already April 1 in UTC) …
    let last_minute_of_march = 1_711_940_340; // 2024-04-01T02:59Z
    events.extend(service_conversation("5511999990001", last_minute_of_march));
    // … and one at 00:00 local on April 1.
    let april_first = 1_711_940_400; // 2024-04-01T03:00Z
    events.extend(service_conversation("5511999990002", april_first));

    let (ledger, _) = fold_all(events);
    let opened: Vec<_> = ledger
        .live_entries()
        .into_iter()
        .filter_map(|e| match &*e.fact {
            Fact::ConversationOpened(c) => {
                Some((c.opened_at, c.context.local_month, e.billable, e.free_reason))
            }
            Fact::MessageBilled(_) => None,
        })
        .collect();
    assert_eq!(opened.len(), 1_002);
    let march = LocalMonth { year: 2024, month: 3 };
    let free_in_march = opened.iter().filter(|c| c.1 == march && c.3 == Some(FreeReason::FreeTier)).count();
    assert_eq!(free_in_march, 1_000);
    let at = |t: i64| opened.iter().find(|c| c.0 == Timestamp(t)).expect("opened");
    assert_eq!(at(last_minute_of_march).1, march);
    assert!(at(last_minute_of_march).2, "the 1,001st of March is charged");
    assert_eq!(at(april_first).1, LocalMonth { year: 2024, month: 4 });
    assert_eq!(at(april_first).3, Some(FreeReason::FreeTier), "April's first is free");
}

#[test]
fn d5_a_late_earlier_conversation_moves_the_free_tier_boundary() {
    // 1,000 conversations fill March; then a conversation from March 1 arrives late. It takes
    // a free slot and the last of the 1,000 becomes charged: reversal + new entry (R26).
    let march_10 = 1_710_039_600;
    let mut events = Given::at(ERA2).settings("America/Sao_Paulo").events;
    for i in 0..1_000 {
        events.extend(service_conversation(&format!("5511900{i:05}"), march_10 + i64::from(i) * 60));
    }
    let (mut ledger, _) = fold_all(events);
    assert!(ledger.live_entries().iter().all(|e| !e.billable));
    let mut journal = Vec::new();
    for event in service_conversation("5511999990003", 1_709_262_000 + 3_600) {
        ledger.apply(event, &mut journal).expect("valid");
    }
    let reversals: Vec<_> = journal.iter().filter(|e| e.reverses.is_some()).collect();
    assert_eq!(reversals.len(), 1, "exactly one conversation leaves the free tier");
    let charged: Vec<_> = ledger.live_entries().into_iter().filter(|e| e.billable).collect();
    assert_eq!(charged.len(), 1);
    assert_eq!(charged[0].fact.at(), Timestamp(march_10 + 999 * 60), "the latest of March pays");
}

#[test]
fn kolkata_month_and_era_switch_follow_local_midnight() {
    // 2025-06-30T18:30Z is 2025-07-01 00:00 in Asia/Kolkata: per-message pricing (R50).
    let mut g = Given::at(1_751_308_200).settings("Asia/Kolkata");
    let before = g.template(-0.5, Marketing);
    let after = g.template(0.0, Marketing);
    let then = g.fold();
    let (_, m) = then.message(&before);
    assert_eq!((m.era.number(), m.context.local_month), (3, LocalMonth { year: 2025, month: 6 }));
    let (_, m) = then.message(&after);
    assert_eq!((m.era.number(), m.context.local_month), (4, LocalMonth { year: 2025, month: 7 }));
    assert_eq!(&*m.context.time_zone, "Asia/Kolkata");
    // In UTC the same instant is still era 3.
    let mut utc = Given::at(1_751_308_200).settings("UTC");
    let same = utc.template(0.0, Marketing);
    assert_eq!(utc.fold().message(&same).1.era.number(), 3);
}

#[test]
fn account_without_settings_is_folded_in_utc_and_says_so_until_settings_arrive() {
    // 2024-03-31T20:00Z: still March in UTC, already April 1 in Asia/Tokyo.
    let mut g = Given::at(1_711_915_200);
    g.template(0.0, Marketing);
    let mut then = g.fold();
    let entries = then.entries();
    assert!(entries.iter().all(|e| e.fact.context().time_zone_assumed));
    assert!(entries.iter().all(|e| e.fact.context().local_month == LocalMonth { year: 2024, month: 3 }));

    let settings = Given::at(1_711_915_200).settings("Asia/Tokyo").events;
    let mut journal = Vec::new();
    for event in settings {
        then.ledger.apply(event, &mut journal).expect("valid");
    }
    // Every entry is reversed and re-posted under the account's real zone.
    assert_eq!(journal.iter().filter(|e| e.reverses.is_some()).count(), entries.len());
    let refolded = then.entries();
    assert!(refolded.iter().all(|e| !e.fact.context().time_zone_assumed));
    assert!(refolded.iter().all(|e| e.fact.context().local_month == LocalMonth { year: 2024, month: 4 }));
}
