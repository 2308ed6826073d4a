//! Rule settings: the points the sources leave open, as dated parameters (ARCHITECTURE decision
//! 2). Era 5 itself is not a setting: it is the era in force from 2026-10-01 (R80, R81, [M: T12]).
//!
//! A store records the settings it was folded under; a command that opens it with different
//! settings refuses rather than mix two rule sets in one ledger.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::HOUR_SECONDS;

/// Who shares one era 5 service allowance (R80, Q14, Q17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowanceScope {
    /// Each business phone number has its own 1,000 a month: most sources, Meta's quoted text.
    PhoneNumber,
    /// The whole WABA shares one 1,000: one BSP's reading.
    Waba,
}

impl AllowanceScope {
    pub fn as_str(self) -> &'static str {
        match self {
            AllowanceScope::PhoneNumber => "phone_number",
            AllowanceScope::Waba => "waba",
        }
    }
}

/// R82: the shortest and longest free entry point window a setting may ask for. Meta's July and
/// August 2026 texts say 72 h; the pricing page quoted from 2026-09-28 says "up to 7 days".
pub const FEP_WINDOW_HOURS_MIN: u32 = 72;
pub const FEP_WINDOW_HOURS_MAX: u32 = 7 * 24;

/// The rule settings a ledger folds under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// R82: length in hours of a free entry point window opened from 2026-09-28 00:00 (WABA
    /// time zone). Windows opened before then last 72 h whatever this says.
    #[serde(default = "default_fep_hours")]
    pub fep_window_hours_from_2026_09_28: u32,
    /// R80: the era 5 service allowance's scope.
    #[serde(default = "default_scope")]
    pub service_allowance_scope: AllowanceScope,
}

fn default_fep_hours() -> u32 {
    72
}

fn default_scope() -> AllowanceScope {
    AllowanceScope::PhoneNumber
}

impl Default for RuleSettings {
    fn default() -> Self {
        RuleSettings {
            fep_window_hours_from_2026_09_28: default_fep_hours(),
            service_allowance_scope: default_scope(),
        }
    }
}

/// A setting outside what the sources allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "fep_window_hours_from_2026_09_28 = {0}: the window is 72 h or, per the text quoted from \
         2026-09-28, up to 7 days ({FEP_WINDOW_HOURS_MIN}..={FEP_WINDOW_HOURS_MAX} hours; R82)"
    )]
    FepWindowHours(u32),
}

impl RuleSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        let hours = self.fep_window_hours_from_2026_09_28;
        if !(FEP_WINDOW_HOURS_MIN..=FEP_WINDOW_HOURS_MAX).contains(&hours) {
            return Err(SettingsError::FepWindowHours(hours));
        }
        Ok(())
    }

    /// R82: the entry point window length for a window opened from 2026-09-28.
    pub fn fep_window_seconds_from_2026_09_28(&self) -> i64 {
        i64::from(self.fep_window_hours_from_2026_09_28) * HOUR_SECONDS
    }

    /// The canonical text stored with the data and compared on open: JSON with a fixed field
    /// order, so equal settings always give equal bytes.
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).expect("rule settings always serialise")
    }

    pub fn from_canonical(text: &str) -> Result<RuleSettings, serde_json::Error> {
        serde_json::from_str(text)
    }
}

impl fmt::Display for RuleSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fep_window_hours_from_2026_09_28 = {}, service_allowance_scope = \"{}\"",
            self.fep_window_hours_from_2026_09_28,
            self.service_allowance_scope.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text_round_trips_and_defaults_fill_in() {
        let settings = RuleSettings {
            fep_window_hours_from_2026_09_28: 168,
            service_allowance_scope: AllowanceScope::Waba,
        };
        assert_eq!(RuleSettings::from_canonical(&settings.canonical()).expect("round trip"), settings);
        assert_eq!(RuleSettings::from_canonical("{}").expect("defaults"), RuleSettings::default());
        assert!(RuleSettings::from_canonical(r#"{"era5":true}"#).is_err(), "unknown keys are refused");
    }

    #[test]
    fn r82_window_bounds() {
        for (hours, ok) in [(71, false), (72, true), (168, true), (169, false)] {
            let settings =
                RuleSettings { fep_window_hours_from_2026_09_28: hours, ..RuleSettings::default() };
            assert_eq!(settings.validate().is_ok(), ok, "{hours} h");
        }
    }
}
