//! Webhook authenticity, as pure functions: the server passes the raw body and headers in.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The header Meta signs webhook bodies in.
pub const META_SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {META_SIGNATURE_HEADER} header is missing")]
    Missing,
    #[error("the {META_SIGNATURE_HEADER} header is not `sha256=` followed by 64 hex digits")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
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
