//! Argon2id password hashing on the blocking pool, with a cap on concurrent hashes (each one
//! holds tens of MiB) and a dummy verification for unknown users so timing does not tell.

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Hashes and verifies passwords.
#[derive(Debug)]
pub struct Passwords {
    argon: Argon2<'static>,
    permits: Semaphore,
    /// A hash of a random password, verified against when the user does not exist.
    dummy: String,
}

impl Passwords {
    /// Argon2id with `memory_kib` of memory, two passes, one lane.
    pub async fn new(memory_kib: u32) -> anyhow::Result<Arc<Self>> {
        let params =
            Params::new(memory_kib, 2, 1, None).map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let random: [u8; 16] = rand::random();
        let seed = random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let a = argon.clone();
        let dummy = tokio::task::spawn_blocking(move || hash_with(&a, &seed))
            .await
            .context("dummy hash task")??;
        Ok(Arc::new(Passwords {
            argon,
            permits: Semaphore::new(workers),
            dummy,
        }))
    }

    /// The PHC string of `password`.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let _permit = self.permits.acquire().await.context("hash permits")?;
        let a = self.argon.clone();
        let h = tokio::task::spawn_blocking(move || hash_with(&a, &password))
            .await
            .context("hash task")??;
        Ok(h)
    }

    /// Whether `password` matches `hash`; with no hash (unknown user) it does the same work
    /// against a dummy hash and answers `false`.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        let _permit = self.permits.acquire().await.context("hash permits")?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.clone());
        let a = self.argon.clone();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|h| a.verify_password(password.as_bytes(), &h).is_ok())
                .unwrap_or(false)
        })
        .await
        .context("verify task")?;
        Ok(ok && known)
    }
}

fn hash_with(a: &Argon2<'_>, password: &str) -> anyhow::Result<String> {
    let bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(a.hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
        .to_string())
}
