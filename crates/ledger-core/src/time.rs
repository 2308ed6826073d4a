//! Instants, durations and the WABA-local calendar.
//!
//! The core never reads a clock (ARCHITECTURE decision 2): every instant is an input. Local dates
//! (month boundaries, era switches) come from the WABA's IANA time zone through `chrono-tz`, which
//! embeds the tz database at build time, so the same log gives the same answer on every machine.

use std::fmt;

use chrono::{Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Unix seconds, UTC. Meta's webhooks carry second precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn seconds(self) -> i64 {
        self.0
    }

    pub const fn plus(self, seconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp(self.0, 0) {
            Some(utc) => write!(f, "{}", utc.format("%Y-%m-%dT%H:%M:%SZ")),
            None => write!(f, "{}s", self.0),
        }
    }
}

pub const HOUR_SECONDS: i64 = 3_600;
pub const DAY_SECONDS: i64 = 24 * HOUR_SECONDS;

/// A month in the WABA's time zone, e.g. 2024-05.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalMonth {
    pub year: i32,
    pub month: u32,
}

impl fmt::Display for LocalMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for LocalMonth {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalMonth {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for LocalMonth {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("month {text:?} is not YYYY-MM");
        let (year, month) = text.split_once('-').ok_or_else(bad)?;
        let year: i32 = year.parse().map_err(|_| bad())?;
        let month: u32 = month.parse().map_err(|_| bad())?;
        if year.to_string().len() != 4 || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(LocalMonth { year, month })
    }
}

/// The first instant of `date` in `tz`. Midnight can fall in a DST gap (e.g. Brazil's former
/// transitions at 00:00), in which case the day starts at the first instant after the gap.
pub fn local_day_start(tz: Tz, date: NaiveDate) -> Timestamp {
    let mut time = date.and_hms_opt(0, 0, 0).expect("midnight is a valid time");
    // A gap is at most a few hours; step by 15 minutes until the local time exists.
    for _ in 0..(24 * 4) {
        if let Some(instant) = tz.from_local_datetime(&time).earliest() {
            return Timestamp(instant.timestamp());
        }
        time += chrono::Duration::minutes(15);
    }
    Timestamp(date.and_hms_opt(0, 0, 0).expect("valid").and_utc().timestamp())
}

/// The local calendar month that contains `t` in `tz`.
pub fn local_month(tz: Tz, t: Timestamp) -> LocalMonth {
    let local = tz.timestamp_opt(t.0, 0).single().map(|dt| dt.date_naive()).unwrap_or_else(|| {
        chrono::DateTime::from_timestamp(t.0, 0).map(|d| d.date_naive()).unwrap_or_default()
    });
    LocalMonth { year: local.year(), month: local.month() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_day_start_in_a_dst_gap_is_the_first_existing_instant() {
        // America/Sao_Paulo moved clocks from 00:00 to 01:00 on 2018-11-04.
        let tz: Tz = "America/Sao_Paulo".parse().expect("zone");
        let start = local_day_start(tz, NaiveDate::from_ymd_opt(2018, 11, 4).expect("date"));
        // 01:00 at UTC-2 is 03:00 UTC.
        assert_eq!(start, Timestamp(1_541_300_400));
    }

    #[test]
    fn month_parses_and_prints() {
        let m: LocalMonth = "2025-07".parse().expect("month");
        assert_eq!(m, LocalMonth { year: 2025, month: 7 });
        assert_eq!(m.to_string(), "2025-07");
        assert!("2025-13".parse::<LocalMonth>().is_err());
        assert!("25-01".parse::<LocalMonth>().is_err());
    }
}
