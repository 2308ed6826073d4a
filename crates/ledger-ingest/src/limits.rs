//! Limits on what one webhook body may hold, checked before any parsing work.

use crate::error::IngestError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Meta batches up to 1,000 updates in one body; a few MiB is ample.
    pub body_bytes_max: usize,
    /// Real payloads nest about 8 levels deep.
    pub depth_max: usize,
    pub events_per_body_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { body_bytes_max: 4 * 1024 * 1024, depth_max: 32, events_per_body_max: 5_000 }
    }
}

impl Limits {
    pub(crate) fn check_body(&self, body: &[u8]) -> Result<(), IngestError> {
        if body.len() > self.body_bytes_max {
            return Err(IngestError::TooLarge { size: body.len(), limit: self.body_bytes_max });
        }
        if nesting_depth_exceeds(body, self.depth_max) {
            return Err(IngestError::TooDeep { limit: self.depth_max });
        }
        Ok(())
    }

    pub(crate) fn check_events(&self, count: usize) -> Result<(), IngestError> {
        if count > self.events_per_body_max {
            return Err(IngestError::TooManyEvents { count, limit: self.events_per_body_max });
        }
        Ok(())
    }
}

/// Bytes the depth scan stops at outside strings.
const STRUCTURAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'{' as usize] = true;
    table[b'[' as usize] = true;
    table[b'}' as usize] = true;
    table[b']' as usize] = true;
    table
};

/// Scans bytes for `{`/`[` nesting outside strings, stopping as soon as `max` is exceeded, so a
/// hostile body never reaches the recursive parser. Whitespace, numbers and literals are skipped
/// by table lookup; string contents with a SIMD search for the next quote or backslash.
fn nesting_depth_exceeds(body: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while i < body.len() {
        if !STRUCTURAL[usize::from(body[i])] {
            i += 1;
            continue;
        }
        match body[i] {
            b'"' => {
                // Skip to the closing quote, stepping over escapes.
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &body[i..]) {
                        None => return false,
                        Some(offset) if body[i + offset] == b'\\' => i += offset + 2,
                        Some(offset) => {
                            i += offset + 1;
                            break;
                        }
                    }
                    if i >= body.len() {
                        return false;
                    }
                }
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            _ => depth = depth.saturating_sub(1),
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert!(!nesting_depth_exceeds(br#"{"a":[{"b":"[[[[[[{{{{"}]}"#, 3));
        assert!(nesting_depth_exceeds(br#"{"a":[{"b":[1]}]}"#, 3));
        assert!(!nesting_depth_exceeds(br#"{"a":"\"[[[["}"#, 1));
        assert!(!nesting_depth_exceeds(br#"{"a":"x\\"}"#, 1), "an escaped backslash ends before the quote");
        assert!(nesting_depth_exceeds(br#"{"a":"x\\",[{}]}"#, 2));
        assert!(!nesting_depth_exceeds(br#"{"unterminated":"[[[["#, 1));
    }

    #[test]
    fn limits_name_the_limit() {
        let limits = Limits { body_bytes_max: 4, ..Limits::default() };
        assert_eq!(
            limits.check_body(b"{ }  ").expect_err("too large").to_string(),
            "body is 5 bytes; the limit is 4"
        );
        let limits = Limits { events_per_body_max: 2, ..Limits::default() };
        assert_eq!(
            limits.check_events(3).expect_err("too many").to_string(),
            "body yields 3 events; the limit is 2"
        );
    }
}
