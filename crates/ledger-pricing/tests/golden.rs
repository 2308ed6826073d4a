//! Golden invoices: the spec's scenarios and a synthetic month of two WABAs in different time
//! zones, priced with the bundled cards. `UPDATE_GOLDEN=1 cargo test -p ledger-pricing --test
//! golden` rewrites the files; review the diff like code.

mod common;

use std::path::PathBuf;

use common::*;
use ledger_core::TemplateCategory;
use ledger_core::TemplateCategory::{Authentication, Marketing, Utility};
use ledger_pricing::Pricing;

const INDIA: &str = "919876543210";

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(actual, expected, "{name} differs from its golden file");
}

fn golden_invoice(name: &str, history: &History, waba: &str, month_text: &str) {
    let book = history.price(Pricing::bundled());
    check(name, &invoice(&book, waba, month_text).to_csv());
}

#[test]
fn s1_era2() {
    let mut h = History::at(ERA2);
    h.delivered("w", INDIA, 0.0, Some(Marketing));
    h.delivered("w", INDIA, 4.0, Some(Utility));
    h.delivered("w", INDIA, 10.0, Some(Utility));
    golden_invoice("s1-era2.csv", &h, "w", "2024-03");
}

#[test]
fn s2_era2() {
    let mut h = History::at(ERA2);
    h.delivered("w", INDIA, 0.0, Some(Marketing));
    h.user_message("w", INDIA, 4.0, None);
    h.delivered("w", INDIA, 5.0, None);
    h.delivered("w", INDIA, 25.0, None);
    h.delivered("w", INDIA, 26.0, None);
    golden_invoice("s2-era2.csv", &h, "w", "2024-03");
}

#[test]
fn s3_entry_point_era2() {
    let mut h = History::at(ERA2);
    h.user_message("w", INDIA, 10.0, Some("ad-1"));
    h.delivered("w", INDIA, 22.0, Some(Marketing));
    h.delivered("w", INDIA, 40.0, Some(Marketing));
    golden_invoice("s3-era2.csv", &h, "w", "2024-03");
}

#[test]
fn s8_era4() {
    let mut h = History::at(ERA4);
    h.delivered("w", INDIA, 0.0, Some(Marketing));
    h.user_message("w", INDIA, 2.0, None);
    h.delivered("w", INDIA, 3.0, None);
    h.delivered("w", INDIA, 4.0, Some(Utility));
    h.delivered("w", INDIA, 30.0, Some(Utility));
    golden_invoice("s8-era4.csv", &h, "w", "2025-09");
}

#[test]
fn s13_groups_era4() {
    let participants: Vec<String> = (0..5).map(|n| format!("91987654320{n}")).collect();
    let all: Vec<&str> = participants.iter().map(String::as_str).collect();
    let mut h = History::at(ERA4);
    // S13: a marketing template to a group of five, delivered to five; another delivered to four.
    h.delivered_to_group("w", "group-a", 0.0, Marketing, &all);
    h.delivered_to_group("w", "group-b", 1.0, Marketing, &all[..4]);
    // R59: a participant writes in group-a; a utility template inside its window is free.
    h.user_message("w", "group-a", 2.0, None);
    h.delivered_to_group("w", "group-a", 3.0, Utility, &all);
    golden_invoice("s13-era4.csv", &h, "w", "2025-09");
}

#[test]
fn d6_entry_point_window_era4() {
    let mut h = History::at(ERA4);
    h.user_message("w", INDIA, 0.0, Some("ad-7"));
    h.delivered("w", INDIA, 1.0, Some(Marketing));
    h.delivered("w", INDIA, 40.0, Some(Marketing));
    h.delivered("w", INDIA, 75.0, Some(Marketing));
    golden_invoice("d6-era4.csv", &h, "w", "2025-09");
}

/// A small deterministic generator, so the month is the same on every machine.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// March 2024 (era 2) for two WABAs: "sp" in America/Sao_Paulo writing to Brazil and India,
/// "kol" in Asia/Kolkata writing to India and North America. Events reach into the neighbouring
/// days so each WABA's month boundary (in its own zone) decides what is on its invoice.
fn synthetic_month() -> History {
    let march_1_utc = 1_709_251_200;
    let mut h = History::at(march_1_utc);
    h.settings("sp", "America/Sao_Paulo");
    h.settings("kol", "Asia/Kolkata");
    let mut random = Lcg(20_240_301);
    let categories: [Option<TemplateCategory>; 4] =
        [Some(Marketing), Some(Utility), Some(Authentication), None];
    for (waba, prefixes) in [("sp", ["5511", "91"]), ("kol", ["91", "1415"])] {
        for contact in 0..40u64 {
            let prefix = prefixes[(contact % 2) as usize];
            let user = format!("{prefix}{:08}", 70_000_000 + contact);
            let mut hour = -12.0 + random.next(24) as f64;
            while hour < 31.0 * 24.0 + 12.0 {
                match random.next(5) {
                    0 => h.user_message(waba, &user, hour, (random.next(4) == 0).then_some("ad-march")),
                    _ => {
                        let category = categories[random.next(4) as usize];
                        h.delivered(waba, &user, hour, category);
                    }
                }
                hour += 6.0 + random.next(96) as f64;
            }
        }
    }
    h
}

#[test]
fn synthetic_month_of_two_wabas_in_different_time_zones() {
    let book = synthetic_month().price(Pricing::bundled());
    for (waba, name) in [("sp", "month-2024-03-sp.csv"), ("kol", "month-2024-03-kol.csv")] {
        let invoice = invoice(&book, waba, "2024-03");
        assert!(invoice.totals.charged > 0, "{waba} has charges");
        assert_eq!(invoice.totals.unpriced, 0, "the 2023-06-01 card prices every market");
        check(name, &invoice.to_csv());
    }
}
