//! The JWT bearer grant's assertion, checked as Salesforce checks it: an RS256 JWT whose issuer
//! is the connected app, whose subject is the user, whose audience is a login host (never the
//! sandbox's own URL) and which has not expired; its signature verified against
//! [`SalesforceConfig::jwt_public_key`](super::SalesforceConfig::jwt_public_key) when one is set
//! (the PEM key's DER read here, for ring), else only required to be RSA-2048-sized.

use base64::Engine as _;
use serde_json::Value;

use super::{CLIENT_ID, Emulator, LOGIN_AUDIENCES, Reply, USERNAME};

impl Emulator<'_> {
    pub(super) fn check_assertion(&self, assertion: &str, now_ms: u64) -> Result<(), Reply> {
        let invalid = || Reply::oauth("invalid_grant", "invalid assertion");
        let mut parts = assertion.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let decode = |part: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .ok()
        };
        let header: Value = decode(header)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(invalid)?;
        let claims: Value = decode(claims)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(invalid)?;
        let signature = decode(signature).ok_or_else(invalid)?;
        if header["alg"] != "RS256" {
            return Err(Reply::oauth(
                "invalid_grant",
                "invalid assertion: alg must be RS256",
            ));
        }
        if claims["iss"] != CLIENT_ID {
            return Err(Reply::oauth(
                "invalid_client_id",
                "client identifier invalid",
            ));
        }
        // Older clients send `prn` for the subject.
        let subject = claims.get("sub").or_else(|| claims.get("prn"));
        if subject.and_then(Value::as_str) != Some(USERNAME) {
            return Err(Reply::oauth(
                "invalid_grant",
                "user hasn't approved this consumer",
            ));
        }
        // The audience is the login host the emulator stands for, as Salesforce documents it,
        // never the URL it is served at: that URL stands for a My Domain (or the client's own
        // guess), and accepting it would echo the client's assumption back to it.
        let audience = claims["aud"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches('/');
        if !LOGIN_AUDIENCES.contains(&audience) {
            return Err(Reply::oauth("invalid_grant", "audience is invalid"));
        }
        match claims["exp"].as_u64() {
            Some(exp) if exp.saturating_mul(1000) > now_ms => {}
            _ => return Err(Reply::oauth("invalid_grant", "expired authorization code")),
        }
        let signed = assertion
            .rsplit_once('.')
            .map_or("", |(signed, _)| signed)
            .as_bytes();
        match &self.config.jwt_public_key {
            Some(pem) => {
                let key = rsa_public_key_der(pem).ok_or_else(|| {
                    Reply::oauth(
                        "invalid_grant",
                        "the sandbox's jwt_public_key is not a PEM RSA public key",
                    )
                })?;
                ring::signature::UnparsedPublicKey::new(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    key,
                )
                .verify(signed, &signature)
                .map_err(|_| Reply::oauth("invalid_grant", "invalid assertion: bad signature"))?;
            }
            // Without the customer's certificate, a well-formed 2048-bit-or-longer signature.
            None if signature.len() >= 256 => {}
            None => {
                return Err(Reply::oauth(
                    "invalid_grant",
                    "invalid assertion: bad signature",
                ));
            }
        }
        Ok(())
    }
}

/// The PKCS#1 `RSAPublicKey` DER of a PEM public key, from either a `PUBLIC KEY`
/// (SubjectPublicKeyInfo) or an `RSA PUBLIC KEY` block: what ring verifies with.
pub fn rsa_public_key_der(pem: &str) -> Option<Vec<u8>> {
    let (label, body) = ["PUBLIC KEY", "RSA PUBLIC KEY"].iter().find_map(|label| {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let body = pem.split_once(&begin)?.1.split_once(&end)?.0;
        Some((*label, body))
    })?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    if label == "RSA PUBLIC KEY" {
        return Some(der);
    }
    // SubjectPublicKeyInfo ::= SEQUENCE { algorithm SEQUENCE {...}, subjectPublicKey BIT STRING }
    let (tag, spki, _) = der_element(&der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, _, rest) = der_element(spki)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, bits, _) = der_element(rest)?;
    // The BIT STRING's first byte counts unused bits: 0 for a key.
    match (tag, bits.split_first()) {
        (0x03, Some((0, key))) => Some(key.to_vec()),
        _ => None,
    }
}

/// One DER element: its tag, its content and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}
