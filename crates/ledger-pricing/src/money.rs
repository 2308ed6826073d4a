//! Exact money: integer billionths of a currency unit.
//!
//! Rate cards publish rates with four to six decimals and invoices multiply them by counts in the
//! millions; floating point would drift by cents. Nine decimals hold every published rate exactly
//! and an `i64` still holds nine billion units of any currency.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const SCALE: i64 = 1_000_000_000;
const DECIMALS: usize = 9;

/// An amount or rate in billionths of the currency unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub i64);

impl Money {
    pub const ZERO: Money = Money(0);

    /// `rate × count`; `None` on overflow (more than nine billion currency units).
    pub fn times(self, count: i64) -> Option<Money> {
        self.0.checked_mul(count).map(Money)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }
}

impl fmt::Display for Money {
    /// Plain decimal with at least two and at most nine fraction digits: `0.0099`, `12.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / SCALE as u64;
        let fraction = format!("{:09}", abs % SCALE as u64);
        let trimmed = fraction.trim_end_matches('0');
        let shown = if trimmed.len() < 2 { &fraction[..2] } else { trimmed };
        write!(f, "{sign}{whole}.{shown}")
    }
}

/// Why a decimal text is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a decimal amount with at most nine fraction digits")]
pub struct MoneyError {
    pub text: String,
}

impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(text: &str) -> Result<Money, MoneyError> {
        let bad = || MoneyError { text: text.to_owned() };
        let trimmed = text.trim();
        let (negative, digits) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > DECIMALS {
            return Err(bad());
        }
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let padded = format!("{fraction:0<9}");
        let fraction: i64 = padded.parse().map_err(|_| bad())?;
        let value = whole.checked_mul(SCALE).and_then(|w| w.checked_add(fraction)).ok_or_else(bad)?;
        Ok(Money(if negative { -value } else { value }))
    }
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_published_rates_exactly() {
        for (text, nanos, shown) in [
            ("0.0099", 9_900_000, "0.0099"),
            ("0.025", 25_000_000, "0.025"),
            ("12.5", 12_500_000_000, "12.50"),
            ("0", 0, "0.00"),
            ("-0.0014", -1_400_000, "-0.0014"),
            ("0.000000001", 1, "0.000000001"),
        ] {
            let money: Money = text.parse().expect(text);
            assert_eq!(money, Money(nanos), "{text}");
            assert_eq!(money.to_string(), shown);
        }
    }

    #[test]
    fn refuses_what_is_not_a_plain_decimal() {
        for text in ["", ".5", "1e-3", "0.0000000001", "abc", "1.2.3", "--1", "0,5"] {
            assert!(text.parse::<Money>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn a_million_messages_at_a_four_decimal_rate_is_exact() {
        let rate: Money = "0.0107".parse().expect("rate");
        assert_eq!(rate.times(1_000_000).expect("fits").to_string(), "10700.00");
    }
}
