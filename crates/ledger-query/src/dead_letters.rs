//! `GET /v1/dead-letters`: refused input, a page at a time, phone numbers masked unless the
//! caller may read raw bodies.

use ledger_store::{DeadLetter, Store};
use serde::Serialize;

use crate::queries::QueryError;

/// One page of dead letters, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterPage {
    pub letters: Vec<DeadLetterView>,
    /// Pass as `after` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterView {
    /// Unix microseconds.
    pub received_at_micros: i64,
    pub source: String,
    pub status: u16,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The body as received, base64: only for callers that may read raw bodies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// The body as text with every phone-number-like run of digits masked (for other callers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_redacted: Option<String>,
    /// Why the body was not kept at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_withheld: Option<String>,
}

impl DeadLetterView {
    fn of(letter: DeadLetter, raw: bool) -> DeadLetterView {
        use base64::Engine;
        let mut view = DeadLetterView {
            received_at_micros: letter.received_at_micros,
            source: letter.source,
            status: letter.status,
            reason: redact_digits(&letter.reason),
            content_type: letter.content_type,
            body_base64: None,
            body_redacted: None,
            body_withheld: letter.body_withheld,
        };
        if view.body_withheld.is_some() {
            return view;
        }
        if raw {
            view.reason = letter.reason;
            view.body_base64 = Some(letter.body_base64);
            return view;
        }
        let body = base64::engine::general_purpose::STANDARD.decode(&letter.body_base64).unwrap_or_default();
        view.body_redacted = Some(match std::str::from_utf8(&body) {
            Ok(text) => redact_digits(text),
            Err(_) => format!("<{} bytes, not text>", body.len()),
        });
        view
    }
}

/// The shortest run of digits masked: E.164 numbers have at least 8 with their country code,
/// while counts, years and status codes are shorter.
const MASKED_DIGITS_MIN: usize = 7;

/// Masks every run of [`MASKED_DIGITS_MIN`] or more digits but its last two (`5511987650001`
/// becomes `•••••••••••01`): phone numbers and user ids, and with them the WABA and phone number
/// ids, which the caller's own scope does not cover here.
pub fn redact_digits(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let digits = run.chars().count();
        if digits >= MASKED_DIGITS_MIN {
            out.extend(std::iter::repeat_n('•', digits - 2));
            out.extend(run.chars().skip(digits - 2));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The page after the cursor `after` (hex key), `limit` letters at most.
pub fn page(
    store: &Store,
    after: Option<&str>,
    limit: usize,
    raw: bool,
) -> Result<DeadLetterPage, QueryError> {
    let before = after
        .map(|cursor| {
            hex_key(cursor).ok_or_else(|| QueryError::BadRequest(format!("after {cursor:?} is not a cursor")))
        })
        .transpose()?;
    let mut letters = store.dead_letters_page(before.as_ref().map(|k| &k[..]), limit + 1)?;
    let next = if letters.len() > limit {
        letters.truncate(limit);
        letters.last().map(|(key, _)| key.iter().map(|b| format!("{b:02x}")).collect())
    } else {
        None
    };
    Ok(DeadLetterPage {
        letters: letters.into_iter().map(|(_, letter)| DeadLetterView::of(letter, raw)).collect(),
        next,
    })
}

fn hex_key(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; 16];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_masked_and_short_numbers_kept() {
        assert_eq!(
            redact_digits(r#"{"from":"+5511987650001","count":3,"year":2026}"#),
            r#"{"from":"+•••••••••••01","count":3,"year":2026}"#
        );
        assert_eq!(redact_digits("wa_id 16315551181 status 401"), "wa_id •••••••••81 status 401");
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let key = [7u8; 16];
        let text: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex_key(&text), Some(key));
        assert_eq!(hex_key("zz"), None);
        assert_eq!(hex_key(&"é".repeat(16)), None);
    }
}
