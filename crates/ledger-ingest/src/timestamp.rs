//! Provider timestamps: Meta sends Unix seconds as strings on messages and statuses and as
//! integers elsewhere (fixture notes, inconsistency 5); both are accepted.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Unix seconds from a JSON string of digits or a JSON integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnixSeconds(pub i64);

impl<'de> Deserialize<'de> for UnixSeconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Seconds;
        impl Visitor<'_> for Seconds {
            type Value = UnixSeconds;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("Unix seconds as an integer or a string of digits")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<UnixSeconds, E> {
                Ok(UnixSeconds(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<UnixSeconds, E> {
                i64::try_from(v).map(UnixSeconds).map_err(|_| E::custom("timestamp out of range"))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<UnixSeconds, E> {
                v.trim()
                    .parse::<i64>()
                    .map(UnixSeconds)
                    .map_err(|_| E::custom(format!("{v:?} is not Unix seconds")))
            }
        }
        d.deserialize_any(Seconds)
    }
}

/// Unix seconds of an RFC 3339 time (Sinch, Sunshine, send records), any fractional precision.
pub(crate) fn rfc3339_seconds(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}
