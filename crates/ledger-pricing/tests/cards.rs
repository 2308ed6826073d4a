//! Rate-card validation: every refusal names the file, the line or the market, and the problem.

use ledger_pricing::{CardError, MarketMap, Pricing, PricingError, PricingSettings, RateCard};

const HEADER: &str = "effective_from,currency,market,category,tier_from,tier_to,rate\n";

fn markets() -> MarketMap {
    MarketMap::from_csv("markets.csv", include_str!("../../../rates/markets.csv")).expect("markets")
}

fn refuse(rows: &str) -> String {
    let text = format!("{HEADER}{rows}");
    RateCard::from_csv("card.csv", &text, &markets()).expect_err("refused").to_string()
}

#[test]
fn bundled_cards_load_and_name_their_missing_markets() {
    let pricing = Pricing::bundled();
    let dates: Vec<String> =
        pricing.book.cards().map(|c| format!("{} {}", c.currency, c.effective_from)).collect();
    let expected = [
        "2022-02-01",
        "2023-06-01",
        "2024-06-01",
        "2024-08-01",
        "2024-10-01",
        "2024-11-01",
        "2025-02-01",
        "2025-04-01",
        "2025-07-01",
        "2025-10-01",
        "2026-01-01",
        "2026-04-01",
        "2026-07-01",
        "2026-10-01",
    ];
    assert_eq!(dates, expected.iter().map(|d| format!("USD {d}")).collect::<Vec<_>>());
    let mut cards = pricing.book.cards();
    let era1 = cards.next().expect("2022 card");
    let missing = era1.missing_markets(&pricing.markets);
    assert!(missing.iter().any(|m| m == "India") && !missing.iter().any(|m| m == "Brazil"), "{missing:?}");
    // From 2023-06-01 every card names every market of its date (a rate or an explicit n/a).
    for card in cards {
        assert!(card.missing_markets(&pricing.markets).is_empty(), "{} misses markets", card.effective_from);
    }
}

#[test]
fn the_october_2026_card_prices_service_in_every_market() {
    let pricing = Pricing::bundled();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).expect("date");
    let card = pricing.book.card("USD", date).expect("a card");
    assert_eq!(card.effective_from, date);
    for market in pricing.markets.markets_on(date) {
        for category in ["marketing", "utility", "service"] {
            assert!(card.rate(&market, category, 1).is_some(), "{market} {category}");
        }
    }
    // R80 [3P, Q23]: Brazil's service rate equals its utility rate.
    let brazil = |category| card.rate("Brazil", category, 1).expect("rate").rate.to_string();
    assert_eq!((brazil("service"), brazil("utility")), ("0.0068".to_owned(), "0.0068".to_owned()));
}

#[test]
fn an_unpublished_rate_is_named_and_a_silent_gap_refused() {
    let text = format!(
        "{HEADER}2026-10-01,USD,India,utility,1,MAX,0.0014\n2026-10-01,USD,India,authentication,1,MAX,n/a\n\
         2026-10-01,USD,Brazil,utility,1,MAX,0.0068\n2026-10-01,USD,Brazil,authentication,1,MAX,0.0068\n"
    );
    let card = RateCard::from_csv("card.csv", &text, &markets()).expect("n/a is a value");
    assert!(card.rate("India", "authentication", 1).is_none());
    assert!(card.missing_reason("India", "authentication").contains("no published authentication rate"));
    let silent = "2026-10-01,USD,India,utility,1,MAX,0.0014\n\
                  2026-10-01,USD,Brazil,utility,1,MAX,0.0068\n2026-10-01,USD,Brazil,authentication,1,MAX,0.0068\n";
    assert_eq!(
        refuse(silent),
        "card.csv: market India has no authentication rate although other markets of the card have one"
    );
}

#[test]
fn overlapping_tiers_are_refused() {
    let error =
        refuse("2025-07-01,USD,India,utility,1,10,0.0014\n2025-07-01,USD,India,utility,10,MAX,0.0010\n");
    assert_eq!(error, "card.csv: India/utility: tiers 1:10 and 10:MAX overlap");
}

#[test]
fn a_gap_between_tiers_is_refused() {
    let error =
        refuse("2025-07-01,USD,India,utility,1,10,0.0014\n2025-07-01,USD,India,utility,12,MAX,0.0010\n");
    assert_eq!(error, "card.csv: India/utility: no rate for counts 11 to 11");
}

#[test]
fn tiers_must_start_at_one_and_end_at_max() {
    assert_eq!(
        refuse("2025-07-01,USD,India,utility,2,MAX,0.0014\n"),
        "card.csv: India/utility: the first tier starts at 2, not 1"
    );
    assert_eq!(
        refuse("2025-07-01,USD,India,utility,1,100,0.0014\n"),
        "card.csv: India/utility: the last tier ends at 100; it must end at MAX"
    );
}

#[test]
fn unknown_markets_and_categories_are_refused_with_the_line() {
    let error = refuse("2025-07-01,USD,Atlantis,utility,1,MAX,0.0014\n");
    assert!(error.starts_with("card.csv line 2: unknown market \"Atlantis\" on 2025-07-01"), "{error}");
    let error = refuse("2025-07-01,USD,India,promotional,1,MAX,0.0014\n");
    assert!(error.starts_with("card.csv line 2: unknown category \"promotional\""), "{error}");
}

#[test]
fn a_market_that_changed_only_later_is_unknown_before_its_date() {
    // Hong Kong became a market of its own on 2026-07-01.
    let error = refuse("2025-07-01,USD,Hong Kong,marketing,1,MAX,0.05\n");
    assert!(error.contains("unknown market \"Hong Kong\" on 2025-07-01"), "{error}");
    assert!(RateCard::from_csv(
        "c.csv",
        &format!("{HEADER}2026-07-01,USD,Hong Kong,marketing,1,MAX,0.05\n"),
        &markets()
    )
    .is_ok());
}

#[test]
fn a_market_without_a_category_the_others_have_is_refused() {
    let error = refuse(
        "2025-07-01,USD,India,marketing,1,MAX,0.0107\n2025-07-01,USD,India,utility,1,MAX,0.0014\n\
         2025-07-01,USD,Brazil,marketing,1,MAX,0.0625\n",
    );
    assert_eq!(
        error,
        "card.csv: market Brazil has no utility rate although other markets of the card have one"
    );
}

#[test]
fn bad_rates_mixed_cards_and_duplicates_are_refused() {
    assert!(refuse("2025-07-01,USD,India,utility,1,MAX,0.00x\n")
        .contains("line 2: rate: \"0.00x\" is not a decimal"));
    assert!(refuse("2025-07-01,USD,India,utility,1,MAX,-0.001\n").contains("line 2: rate -0.001 is negative"));
    let mixed =
        refuse("2025-07-01,USD,India,utility,1,MAX,0.0014\n2025-10-01,USD,India,marketing,1,MAX,0.01\n");
    assert!(mixed.contains("line 3: row is for USD 2025-10-01 but the card is USD 2025-07-01"), "{mixed}");
    let card = |name: &str| {
        RateCard::from_csv(name, &format!("{HEADER}2025-07-01,USD,India,utility,1,MAX,0.0014\n"), &markets())
            .expect("card")
    };
    let error = Pricing::new(markets(), vec![card("a.csv"), card("b.csv")], PricingSettings::default())
        .expect_err("duplicate");
    assert!(matches!(error, PricingError::Card(CardError::Duplicate { .. })));
    assert_eq!(error.to_string(), "a.csv and b.csv are both the USD card effective 2025-07-01");
}

#[test]
fn settings_refuse_a_waba_in_two_portfolios() {
    let text = "[[business]]\nid = \"a\"\nwabas = [\"w\"]\n[[business]]\nid = \"b\"\nwabas = [\"w\"]\n";
    let error = PricingSettings::from_toml("s.toml", text).expect_err("refused");
    assert_eq!(error.to_string(), "s.toml: WABA w is listed under both a and b");
}

#[test]
fn the_example_settings_file_parses() {
    let settings =
        PricingSettings::from_toml("examples/pricing.toml", include_str!("../../../examples/pricing.toml"))
            .expect("examples/pricing.toml");
    assert_eq!(settings.business[0].primary_location.as_deref(), Some("BR"));
}
