//! JWT issue and verification: HS256 only, `exp` required and enforced, `nbf` enforced when
//! present, algorithm pinned.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Shortest accepted `JWT_SECRET`, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// The claims carried by a session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: i64,
    /// The username, so edges need no database read to name a sender.
    pub name: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    pub iat: i64,
}

/// Why a token was refused. The text is safe to show; it never says more than "invalid".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
}

/// Signing and verification keys for one `JWT_SECRET`.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys").field("ttl", &self.ttl).finish()
    }
}

impl JwtKeys {
    /// Keys for `secret` (at least 32 bytes) issuing tokens valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> anyhow::Result<Self> {
        if secret.len() < MIN_SECRET_BYTES {
            anyhow::bail!("JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes");
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 0;
        validation.validate_exp = true;
        // Off by default in jsonwebtoken: a token "not valid before" a future time (or whose
        // `nbf` is not a number) would otherwise be accepted now.
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        Ok(JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        })
    }

    /// Reads `JWT_SECRET` and `JWT_TTL_SECS` (default one day).
    pub fn from_env() -> anyhow::Result<Self> {
        let secret = std::env::var("JWT_SECRET")
            .map_err(|_| anyhow::anyhow!("JWT_SECRET is not set (at least 32 bytes)"))?;
        let ttl = crate::limits::env_or("JWT_TTL_SECS", 86_400u64)?;
        Self::new(secret.as_bytes(), Duration::from_secs(ttl))
    }

    /// Issues a token for the user; returns it with its expiry.
    pub fn issue(&self, user_id: i64, username: &str) -> anyhow::Result<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let exp = now + chrono::Duration::from_std(self.ttl)?;
        self.issue_with_expiry(user_id, username, exp)
    }

    /// Issues a token expiring at `exp` (tests use it for short-lived tokens).
    pub fn issue_with_expiry(
        &self,
        user_id: i64,
        username: &str,
        exp: DateTime<Utc>,
    ) -> anyhow::Result<(String, DateTime<Utc>)> {
        let claims = Claims {
            sub: user_id,
            name: username.to_owned(),
            exp: exp.timestamp(),
            iat: Utc::now().timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((
            token,
            DateTime::from_timestamp(claims.exp, 0).unwrap_or(exp),
        ))
    }

    /// Verifies signature, algorithm and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Err(TokenError::Expired),
                _ => Err(TokenError::Invalid),
            },
        }
    }
}

/// Extracts the token from an `Authorization: Bearer <jwt>` header value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn keys() -> JwtKeys {
        JwtKeys::new(SECRET, Duration::from_secs(3600)).unwrap()
    }

    fn b64(v: &serde_json::Value) -> String {
        use base64_like::encode;
        encode(v.to_string().as_bytes())
    }

    /// Minimal URL-safe base64 without padding, enough to forge test tokens.
    mod base64_like {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        pub fn encode(b: &[u8]) -> String {
            let mut out = String::new();
            for chunk in b.chunks(3) {
                let n = chunk.iter().fold(0u32, |acc, &x| acc << 8 | x as u32)
                    << (8 * (3 - chunk.len()));
                for i in 0..=chunk.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                }
            }
            out
        }
    }

    fn hs256(secret: &[u8], header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let signing_input = format!("{}.{}", b64(header), b64(claims));
        // Sign through jsonwebtoken's own primitive so only the payload is forged.
        let sig = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            &EncodingKey::from_secret(secret),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{signing_input}.{sig}")
    }

    #[test]
    fn issued_tokens_verify() {
        let k = keys();
        let (t, exp) = k.issue(7, "alice").unwrap();
        let c = k.verify(&t).unwrap();
        assert_eq!(
            (c.sub, c.name.as_str(), c.exp),
            (7, "alice", exp.timestamp())
        );
    }

    #[test]
    fn forged_tokens_are_refused() {
        let k = keys();
        let exp = Utc::now().timestamp() + 600;
        let claims = serde_json::json!({"sub": 1, "name": "a", "exp": exp, "iat": 0});
        let hdr = serde_json::json!({"alg": "HS256", "typ": "JWT"});
        // Control: a well-formed token made by hand verifies.
        assert!(k.verify(&hs256(SECRET, &hdr, &claims)).is_ok());
        // Wrong signature.
        let other = b"ffffffffffffffffffffffffffffffff";
        assert_eq!(
            k.verify(&hs256(other, &hdr, &claims)),
            Err(TokenError::Invalid)
        );
        // alg: none, no signature.
        let none = format!(
            "{}.{}.",
            b64(&serde_json::json!({"alg":"none"})),
            b64(&claims)
        );
        assert_eq!(k.verify(&none), Err(TokenError::Invalid));
        // Another algorithm in the header, signed with the secret.
        let hs512 = serde_json::json!({"alg": "HS512", "typ": "JWT"});
        let sig512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(k.verify(&sig512), Err(TokenError::Invalid));
        let _ = hs512;
        // Expired.
        let old =
            serde_json::json!({"sub": 1, "name": "a", "exp": Utc::now().timestamp() - 5, "iat": 0});
        assert_eq!(
            k.verify(&hs256(SECRET, &hdr, &old)),
            Err(TokenError::Expired)
        );
        // exp of the wrong JSON type.
        let wrong = serde_json::json!({"sub": 1, "name": "a", "exp": exp.to_string(), "iat": 0});
        assert!(k.verify(&hs256(SECRET, &hdr, &wrong)).is_err());
        // Missing exp.
        let missing = serde_json::json!({"sub": 1, "name": "a", "iat": 0});
        assert!(k.verify(&hs256(SECRET, &hdr, &missing)).is_err());
        // Garbage.
        assert_eq!(k.verify("not.a.token"), Err(TokenError::Invalid));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(JwtKeys::new(b"short", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
    }
}
