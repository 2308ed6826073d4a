//! Webhook authenticity, as pure functions: the server passes the raw body and headers in.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The header Meta signs webhook bodies in.
pub const META_SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature headers are malformed")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("the signed timestamp is {age} s from now, outside the {window} s accepted (a replay?)")]
    Stale { age: i64, window: u64 },
}

/// Sinch callbacks signed more than this far from the receiving clock are refused by default: a
/// captured callback cannot be replayed later (Sinch retries within minutes of the first try).
pub const SINCH_TIMESTAMP_WINDOW_SECONDS: u64 = 300;

/// Checks that a Sinch callback's signed timestamp (Unix seconds) is within `window` seconds of
/// `now`, either way. Non-numeric timestamps are malformed.
pub fn check_sinch_timestamp(timestamp: Option<&str>, now: i64, window: u64) -> Result<(), SignatureError> {
    let signed: i64 =
        timestamp.ok_or(SignatureError::Missing)?.trim().parse().map_err(|_| SignatureError::Malformed)?;
    let age = now.saturating_sub(signed);
    if age.unsigned_abs() > window {
        return Err(SignatureError::Stale { age, window });
    }
    Ok(())
}

/// Checks Meta's `X-Hub-Signature-256: sha256=<hex>`: HMAC-SHA256 of the raw body keyed with
/// the app secret. The comparison is constant-time.
pub fn verify_meta_signature(
    app_secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header.trim().strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    let mut expected = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut expected).map_err(|_| SignatureError::Malformed)?;
    let mut mac = HmacSha256::new_from_slice(app_secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

/// Sinch Conversation API callback headers.
pub const SINCH_SIGNATURE_HEADER: &str = "x-sinch-webhook-signature";
pub const SINCH_NONCE_HEADER: &str = "x-sinch-webhook-signature-nonce";
pub const SINCH_TIMESTAMP_HEADER: &str = "x-sinch-webhook-signature-timestamp";
pub const SINCH_ALGORITHM_HEADER: &str = "x-sinch-webhook-signature-algorithm";

/// The Sinch signature headers of one callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinchSignature<'a> {
    pub signature: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    /// `HmacSHA256` when absent.
    pub algorithm: Option<&'a str>,
}

/// Checks a Sinch Conversation API callback: Base64(HMAC(secret, body + "." + nonce + "." +
/// timestamp)) with SHA-256 (`HmacSHA256`) or SHA-512 (`HmacSHA512`), compared in constant time.
/// Whether the timestamp is recent enough is the server's call (it has the clock).
pub fn verify_sinch_signature(
    secret: &[u8],
    body: &[u8],
    headers: &SinchSignature<'_>,
) -> Result<(), SignatureError> {
    use base64::Engine as _;
    let signature = headers.signature.ok_or(SignatureError::Missing)?;
    let (nonce, timestamp) = headers.nonce.zip(headers.timestamp).ok_or(SignatureError::Malformed)?;
    let expected = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| SignatureError::Malformed)?;
    fn check<M: Mac + hmac::digest::KeyInit>(
        secret: &[u8],
        parts: [&[u8]; 5],
        expected: &[u8],
    ) -> Result<(), SignatureError> {
        let mut mac =
            <M as hmac::digest::KeyInit>::new_from_slice(secret).map_err(|_| SignatureError::Malformed)?;
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(expected).map_err(|_| SignatureError::Mismatch)
    }
    let parts = [body, b".", nonce.as_bytes(), b".", timestamp.as_bytes()];
    match headers.algorithm.unwrap_or("HmacSHA256") {
        "HmacSHA256" => check::<Hmac<Sha256>>(secret, parts, &expected),
        "HmacSHA512" => check::<Hmac<sha2::Sha512>>(secret, parts, &expected),
        _ => Err(SignatureError::Malformed),
    }
}

/// Sunshine Conversations sends its webhook secret in this header.
pub const SUNSHINE_SECRET_HEADER: &str = "X-API-Key";

/// Checks a shared-secret header (Sunshine Conversations' `X-API-Key`) in constant time.
pub fn verify_shared_secret(expected: &str, header: Option<&str>) -> Result<(), SignatureError> {
    let given = header.ok_or(SignatureError::Missing)?;
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Checks an `Authorization: Basic base64(user:password)` header (Sunshine Conversations
/// integrations can use basic authentication instead), in constant time.
pub fn verify_basic_auth(user: &str, password: &str, header: Option<&str>) -> Result<(), SignatureError> {
    use base64::Engine as _;
    let header = header.ok_or(SignatureError::Missing)?;
    let encoded = header.trim().strip_prefix("Basic ").ok_or(SignatureError::Malformed)?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| SignatureError::Malformed)?;
    let expected = format!("{user}:{password}");
    if bool::from(given.as_slice().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The query of Meta's GET verification request (`hub.mode`, `hub.verify_token`,
/// `hub.challenge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationRequest<'a> {
    pub mode: Option<&'a str>,
    pub verify_token: Option<&'a str>,
    pub challenge: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("hub.mode must be \"subscribe\"")]
    NotSubscribe,
    #[error("hub.verify_token does not match")]
    WrongToken,
    #[error("hub.challenge is missing")]
    MissingChallenge,
}

/// Answers Meta's subscription handshake: the challenge to echo back when the mode is
/// `subscribe` and the token matches the configured one (compared in constant time).
pub fn meta_verification_challenge<'a>(
    request: &VerificationRequest<'a>,
    expected_token: &str,
) -> Result<&'a str, HandshakeError> {
    if request.mode != Some("subscribe") {
        return Err(HandshakeError::NotSubscribe);
    }
    let token = request.verify_token.unwrap_or_default();
    if !bool::from(token.as_bytes().ct_eq(expected_token.as_bytes())) {
        return Err(HandshakeError::WrongToken);
    }
    request.challenge.filter(|c| !c.is_empty()).ok_or(HandshakeError::MissingChallenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently with Python's hmac module:
    // hmac.new(b"app-secret", b'{"object":"whatsapp_business_account","entry":[]}', "sha256").hexdigest()
    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    const GOOD: &str = "sha256=d3e4f9da0ce6c71ab3dba55929b8eeeee2455349e534924ead19f98d143e904f";

    #[test]
    fn a_known_good_signature_verifies() {
        assert_eq!(verify_meta_signature(b"app-secret", BODY, Some(GOOD)), Ok(()));
    }

    #[test]
    fn a_tampered_body_or_secret_is_a_mismatch() {
        let tampered = br#"{"object":"whatsapp_business_account","entry":[{}]}"#;
        assert_eq!(verify_meta_signature(b"app-secret", tampered, Some(GOOD)), Err(SignatureError::Mismatch));
        assert_eq!(verify_meta_signature(b"other-secret", BODY, Some(GOOD)), Err(SignatureError::Mismatch));
    }

    #[test]
    fn missing_or_malformed_headers_are_named() {
        assert_eq!(verify_meta_signature(b"s", BODY, None), Err(SignatureError::Missing));
        assert_eq!(verify_meta_signature(b"s", BODY, Some("sha1=abcd")), Err(SignatureError::Malformed));
        assert_eq!(verify_meta_signature(b"s", BODY, Some("sha256=zz")), Err(SignatureError::Malformed));
    }

    // Computed independently with Python: base64(hmac.new(b"sinch-secret",
    // b'{"app_id":"A"}' + b"." + b"nonce-1" + b"." + b"1634579353", "sha256").digest())
    const SINCH_GOOD: &str = "XMau2XYpKWzWf1USqhTtF5rTGZKPLQWz3cdEYRt9ZLo=";

    #[test]
    fn sinch_timestamps_outside_the_window_are_refused() {
        let now = 1_796_119_200;
        let window = SINCH_TIMESTAMP_WINDOW_SECONDS;
        assert_eq!(check_sinch_timestamp(Some("1796119200"), now, window), Ok(()));
        assert_eq!(check_sinch_timestamp(Some("1796118900"), now, window), Ok(()), "300 s old: inside");
        assert_eq!(
            check_sinch_timestamp(Some("1796101200"), now, window),
            Err(SignatureError::Stale { age: 18_000, window }),
            "five hours old"
        );
        assert!(matches!(
            check_sinch_timestamp(Some("1000000000"), now, window),
            Err(SignatureError::Stale { .. })
        ));
        assert!(matches!(
            check_sinch_timestamp(Some("1796119800"), now, window),
            Err(SignatureError::Stale { .. })
        ));
        assert_eq!(check_sinch_timestamp(Some("soon"), now, window), Err(SignatureError::Malformed));
        assert_eq!(check_sinch_timestamp(None, now, window), Err(SignatureError::Missing));
    }

    #[test]
    fn sinch_signature_known_good_and_tampered() {
        let headers = SinchSignature {
            signature: Some(SINCH_GOOD),
            nonce: Some("nonce-1"),
            timestamp: Some("1634579353"),
            algorithm: Some("HmacSHA256"),
        };
        assert_eq!(verify_sinch_signature(b"sinch-secret", br#"{"app_id":"A"}"#, &headers), Ok(()));
        assert_eq!(
            verify_sinch_signature(b"sinch-secret", br#"{"app_id":"B"}"#, &headers),
            Err(SignatureError::Mismatch)
        );
        let replayed = SinchSignature { nonce: Some("nonce-2"), ..headers };
        assert_eq!(
            verify_sinch_signature(b"sinch-secret", br#"{"app_id":"A"}"#, &replayed),
            Err(SignatureError::Mismatch)
        );
        let unknown = SinchSignature { algorithm: Some("HmacMD5"), ..headers };
        assert_eq!(
            verify_sinch_signature(b"sinch-secret", br#"{"app_id":"A"}"#, &unknown),
            Err(SignatureError::Malformed)
        );
        let unsigned = SinchSignature { signature: None, ..headers };
        assert_eq!(verify_sinch_signature(b"sinch-secret", b"{}", &unsigned), Err(SignatureError::Missing));
    }

    #[test]
    fn sunshine_secret_and_basic_auth() {
        assert_eq!(verify_shared_secret("s3cret", Some("s3cret")), Ok(()));
        assert_eq!(verify_shared_secret("s3cret", Some("s3creT")), Err(SignatureError::Mismatch));
        assert_eq!(verify_shared_secret("s3cret", None), Err(SignatureError::Missing));
        // base64("ledger:pa55") = bGVkZ2VyOnBhNTU=
        assert_eq!(verify_basic_auth("ledger", "pa55", Some("Basic bGVkZ2VyOnBhNTU=")), Ok(()));
        assert_eq!(
            verify_basic_auth("ledger", "other", Some("Basic bGVkZ2VyOnBhNTU=")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify_basic_auth("ledger", "pa55", Some("Bearer x")), Err(SignatureError::Malformed));
    }

    #[test]
    fn handshake_echoes_the_challenge_only_for_the_right_token() {
        let request = VerificationRequest {
            mode: Some("subscribe"),
            verify_token: Some("tok"),
            challenge: Some("1158201444"),
        };
        assert_eq!(meta_verification_challenge(&request, "tok"), Ok("1158201444"));
        assert_eq!(meta_verification_challenge(&request, "other"), Err(HandshakeError::WrongToken));
        let unsubscribe = VerificationRequest { mode: Some("unsubscribe"), ..request };
        assert_eq!(meta_verification_challenge(&unsubscribe, "tok"), Err(HandshakeError::NotSubscribe));
        let no_challenge = VerificationRequest { challenge: None, ..request };
        assert_eq!(meta_verification_challenge(&no_challenge, "tok"), Err(HandshakeError::MissingChallenge));
    }
}
