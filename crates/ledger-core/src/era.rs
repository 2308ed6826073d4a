//! Pricing eras (spec §2) and each account's switch instants.
//!
//! Every switch happens at 00:00 on its date in the WABA's time zone (R50; the issue extends the
//! same rule to every era switch), so two WABAs of one business can be in different eras for a
//! few hours. The instants are computed once per account, not per event.

use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::time::{local_day_start, local_month, LocalMonth, Timestamp};

/// The pricing model in force at a delivery instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Era {
    /// Era 0, notification-based pricing before 2022-02-01: out of scope, never billed here.
    NotificationBased,
    /// Era 1: user-/business-initiated 24 h conversations (R10–R15).
    ConversationsV1,
    /// Era 2: conversations per category, 1,000 free service conversations a month (R20–R29).
    ConversationCategories,
    /// Era 3: service conversations free and unlimited (R40–R42).
    FreeService,
    /// Era 4: per-message pricing (R50–R59).
    PerMessage,
    /// Era 5: paid service messages and paid in-window utility from 2026-10-01 (R80–R84): the
    /// era in force now.
    PaidService,
}

impl Era {
    pub const fn number(self) -> u8 {
        match self {
            Era::NotificationBased => 0,
            Era::ConversationsV1 => 1,
            Era::ConversationCategories => 2,
            Era::FreeService => 3,
            Era::PerMessage => 4,
            Era::PaidService => 5,
        }
    }

    /// Conversation-based pricing (eras 1–3) counts conversations; later eras count messages.
    pub const fn is_conversation_based(self) -> bool {
        matches!(self, Era::ConversationsV1 | Era::ConversationCategories | Era::FreeService)
    }
}

const fn date(y: i32, m: u32, d: u32) -> (i32, u32, u32) {
    (y, m, d)
}

/// Local dates on which the model changes (spec §2).
pub const ERA1_START: (i32, u32, u32) = date(2022, 2, 1);
/// R25/R14: the free entry point becomes one 72 h window (Q5: this spec uses 2023-03-01).
pub const FEP_72H_START: (i32, u32, u32) = date(2023, 3, 1);
pub const ERA2_START: (i32, u32, u32) = date(2023, 6, 1);
pub const ERA3_START: (i32, u32, u32) = date(2024, 11, 1);
pub const ERA4_START: (i32, u32, u32) = date(2025, 7, 1);
pub const ERA5_START: (i32, u32, u32) = date(2026, 10, 1);
/// R82: from this local date the entry point window length is a setting (Meta's pricing page as
/// quoted from 2026-09-28 says "up to 7 days"; its July and August texts say 72 h).
pub const FEP_LENGTH_SETTING_START: (i32, u32, u32) = date(2026, 9, 28);
/// R83b: Meta Business Agent messages are charged per token from this local date.
pub const MBA_TOKENS_START: (i32, u32, u32) = date(2026, 8, 1);

/// An account's calendar: its time zone and the instants at which its eras switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountClock {
    tz: Tz,
    /// Shared by every fact the account produces.
    tz_name: Arc<str>,
    tz_assumed: bool,
    era1: Timestamp,
    fep_72h: Timestamp,
    era2: Timestamp,
    era3: Timestamp,
    era4: Timestamp,
    era5: Timestamp,
    fep_length_setting: Timestamp,
    mba_tokens: Timestamp,
    /// The instants local months start at, from `MONTH_TABLE_FIRST_YEAR` on: every fact needs
    /// its WABA-local month, and a binary search is far cheaper than a tz conversion.
    month_starts: Arc<[Timestamp]>,
}

const MONTH_TABLE_FIRST_YEAR: i32 = 2020;
const MONTH_TABLE_YEARS: i32 = 16;

impl AccountClock {
    /// `tz_assumed` marks an account folded in UTC because no settings event named its zone.
    pub fn new(tz: Tz, tz_assumed: bool) -> Self {
        let at = |(y, m, d): (i32, u32, u32)| {
            local_day_start(tz, NaiveDate::from_ymd_opt(y, m, d).expect("era dates are valid"))
        };
        AccountClock {
            tz,
            tz_name: Arc::from(tz.name()),
            tz_assumed,
            era1: at(ERA1_START),
            fep_72h: at(FEP_72H_START),
            era2: at(ERA2_START),
            era3: at(ERA3_START),
            era4: at(ERA4_START),
            era5: at(ERA5_START),
            fep_length_setting: at(FEP_LENGTH_SETTING_START),
            mba_tokens: at(MBA_TOKENS_START),
            month_starts: (0..MONTH_TABLE_YEARS * 12)
                .map(|i| at((MONTH_TABLE_FIRST_YEAR + i / 12, (i % 12) as u32 + 1, 1)))
                .collect(),
        }
    }

    pub fn utc_assumed() -> Self {
        AccountClock::new(Tz::UTC, true)
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    pub fn tz_name(&self) -> &Arc<str> {
        &self.tz_name
    }

    pub fn tz_assumed(&self) -> bool {
        self.tz_assumed
    }

    pub fn era_at(&self, t: Timestamp) -> Era {
        if t < self.era1 {
            Era::NotificationBased
        } else if t < self.era2 {
            Era::ConversationsV1
        } else if t < self.era3 {
            Era::ConversationCategories
        } else if t < self.era4 {
            Era::FreeService
        } else if t < self.era5 {
            Era::PerMessage
        } else {
            Era::PaidService
        }
    }

    /// Whether an entry point at `t` gets the 72 h window (R25) rather than the v1 24 h free
    /// conversation (R14).
    pub fn fep_is_72h_window(&self, t: Timestamp) -> bool {
        t >= self.fep_72h
    }

    /// R82: whether a window opened at `t` takes its length from the rule settings (from
    /// 2026-09-28) rather than the fixed 72 h of R53.
    pub fn fep_length_is_a_setting(&self, t: Timestamp) -> bool {
        t >= self.fep_length_setting
    }

    /// R83b: whether a Meta Business Agent message delivered at `t` is charged per token.
    pub fn mba_is_charged(&self, t: Timestamp) -> bool {
        t >= self.mba_tokens
    }

    pub fn local_month(&self, t: Timestamp) -> LocalMonth {
        let starts = &self.month_starts;
        let index = starts.partition_point(|start| *start <= t);
        if index == 0 || index == starts.len() {
            return local_month(self.tz, t);
        }
        let month = (index - 1) as i32;
        LocalMonth { year: MONTH_TABLE_FIRST_YEAR + month / 12, month: (month % 12) as u32 + 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_message_pricing_starts_at_local_midnight() {
        // R50: 2025-07-01 00:00 in Asia/Kolkata (UTC+05:30) is 2025-06-30T18:30Z.
        let kolkata = AccountClock::new("Asia/Kolkata".parse().expect("zone"), false);
        let switch = Timestamp(1_751_308_200);
        assert_eq!(kolkata.era_at(switch.plus(-1)), Era::FreeService);
        assert_eq!(kolkata.era_at(switch), Era::PerMessage);
        // The same instant is still June 30 in UTC.
        let utc = AccountClock::utc_assumed();
        assert_eq!(utc.era_at(switch), Era::FreeService);
    }

    #[test]
    fn the_month_table_agrees_with_the_tz_conversion() {
        for zone in ["America/Sao_Paulo", "Asia/Kolkata", "Pacific/Chatham", "America/St_Johns", "UTC"] {
            let clock = AccountClock::new(zone.parse().expect("zone"), false);
            // Every 6 hours over 2019–2037: outside, at and inside every boundary of the table.
            let mut t = 1_546_300_800 - 86_400 * 40;
            while t < 2_114_380_800 {
                let at = Timestamp(t);
                assert_eq!(clock.local_month(at), local_month(clock.tz(), at), "{zone} at {at}");
                t += 6 * 3_600 + 1;
            }
            for start in clock.month_starts.iter() {
                for at in [start.plus(-1), *start, start.plus(1)] {
                    assert_eq!(clock.local_month(at), local_month(clock.tz(), at), "{zone} at {at}");
                }
            }
        }
    }

    #[test]
    fn era5_is_in_force_from_local_midnight_of_2026_10_01() {
        // R80, R81: 2026-10-01 00:00 in America/Sao_Paulo (UTC-03:00) is 03:00Z.
        let sao_paulo = AccountClock::new("America/Sao_Paulo".parse().expect("zone"), false);
        let switch = Timestamp(1_790_823_600);
        assert_eq!(sao_paulo.era_at(switch.plus(-1)), Era::PerMessage);
        assert_eq!(sao_paulo.era_at(switch), Era::PaidService);
        assert_eq!(AccountClock::utc_assumed().era_at(Timestamp(1_793_000_000)), Era::PaidService);
    }
}
