//! The `ledger.v1` protobuf types and their conversions to and from the core domain types.
//!
//! Protobuf is the wire and storage format; `ledger-core` types are the domain. Conversion
//! happens here, at the edge: proto → core is fallible (`TryFrom`, naming the missing or bad
//! field), core → proto is total (`From`).

mod entry;
mod event;

/// Generated from `proto/ledger/v1/*.proto`.
#[allow(missing_debug_implementations, clippy::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/ledger.v1.rs"));
}

use prost::Message;

pub use event::ConvertError;

/// Why bytes could not become a core event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a ledger.v1 message: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error(transparent)]
    Convert(#[from] ConvertError),
}

pub fn encode_event(event: &ledger_core::Event) -> Vec<u8> {
    v1::Event::from(event).encode_to_vec()
}

pub fn decode_event(bytes: &[u8]) -> Result<ledger_core::Event, DecodeError> {
    Ok(ledger_core::Event::try_from(v1::Event::decode(bytes)?)?)
}

pub fn encode_entry(entry: &ledger_core::Entry) -> Vec<u8> {
    v1::Entry::from(entry).encode_to_vec()
}

pub fn decode_entry(bytes: &[u8]) -> Result<ledger_core::Entry, DecodeError> {
    Ok(ledger_core::Entry::try_from(v1::Entry::decode(bytes)?)?)
}
