//! Deterministic identifiers.
//!
//! Entry ids must be the same on every machine and every release for the same log, so they are
//! not built on `std::hash::Hash` (whose output is not guaranteed across Rust versions): each
//! hashed type writes an explicit, length-prefixed little-endian encoding into XXH3-128.

use std::fmt;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

/// Inline buffer: a typical fact encodes in ~300 bytes.
const ID_BUFFER_BYTES: usize = 512;

/// Collects an explicit byte encoding in an inline buffer and feeds XXH3-128 in large chunks:
/// no allocation, and none of the per-call cost of streaming many small writes. The digest is
/// that of the whole byte sequence either way.
pub struct IdHasher {
    buffer: [u8; ID_BUFFER_BYTES],
    len: usize,
    /// Used only once an encoding outgrows the buffer.
    overflow: Option<Box<Xxh3>>,
}

impl fmt::Debug for IdHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdHasher")
    }
}

impl IdHasher {
    /// `domain` separates id spaces (facts, entries, reversals) so they never collide.
    pub fn new(domain: &str) -> Self {
        let mut hasher = IdHasher { buffer: [0; ID_BUFFER_BYTES], len: 0, overflow: None };
        hasher.str(domain);
        hasher
    }

    #[inline]
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
        self
    }

    #[inline]
    pub fn str(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > ID_BUFFER_BYTES {
            let stream = self.overflow.get_or_insert_with(|| Box::new(Xxh3::new()));
            stream.update(&self.buffer[..self.len]);
            self.len = 0;
            if bytes.len() > ID_BUFFER_BYTES {
                stream.update(bytes);
                return;
            }
        }
        self.buffer[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    #[inline]
    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.write(&value.to_le_bytes());
        self
    }

    #[inline]
    pub fn i64(&mut self, value: i64) -> &mut Self {
        self.write(&value.to_le_bytes());
        self
    }

    #[inline]
    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.write(&[value]);
        self
    }

    #[inline]
    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.u8(u8::from(value))
    }

    #[inline]
    pub fn opt_str(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            None => self.u8(0),
            Some(text) => self.u8(1).str(text),
        }
    }

    #[inline]
    pub fn u128(&mut self, value: u128) -> &mut Self {
        self.write(&value.to_le_bytes());
        self
    }

    pub fn finish(&self) -> u128 {
        match &self.overflow {
            None => xxh3_128(&self.buffer[..self.len]),
            Some(stream) => {
                let mut stream = stream.clone();
                stream.update(&self.buffer[..self.len]);
                stream.digest128()
            }
        }
    }
}

/// A 128-bit deterministic id, printed as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id128(pub u128);

impl fmt::Display for Id128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl std::str::FromStr for Id128 {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() != 32 {
            return Err(format!("id {text:?} is not 32 hex digits"));
        }
        u128::from_str_radix(text, 16).map(Id128).map_err(|_| format!("id {text:?} is not 32 hex digits"))
    }
}

impl Serialize for Id128 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Id128 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_pinned() {
        // A frozen value: if this changes, every entry id in every stored ledger changes.
        let id = IdHasher::new("fact").str("wamid.A1").i64(1_700_000_000).finish();
        assert_eq!(Id128(id).to_string(), "ae0dd0d5370da2ce6fc371d6afd0db95");
        let other = IdHasher::new("entry").str("wamid.A1").i64(1_700_000_000).finish();
        assert_ne!(id, other);
        assert_eq!(Id128(id).to_string().parse::<Id128>(), Ok(Id128(id)));
    }

    #[test]
    fn long_encodings_hash_like_the_whole_byte_sequence() {
        let long = "x".repeat(3 * ID_BUFFER_BYTES + 17);
        let mut streamed = IdHasher::new("d");
        streamed.str(&long).u64(7).str(&long);
        let mut bytes = Vec::new();
        let mut string = |text: &[u8]| {
            bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
            bytes.extend_from_slice(text);
        };
        string(b"d");
        string(long.as_bytes());
        bytes.extend_from_slice(&7u64.to_le_bytes());
        let mut string = |text: &[u8]| {
            bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
            bytes.extend_from_slice(text);
        };
        string(long.as_bytes());
        assert_eq!(streamed.finish(), xxh3_128(&bytes));
    }

    #[test]
    fn length_prefix_separates_fields() {
        let ab_c = IdHasher::new("x").str("ab").str("c").finish();
        let a_bc = IdHasher::new("x").str("a").str("bc").finish();
        assert_ne!(ab_c, a_bc);
    }
}
