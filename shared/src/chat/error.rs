//! Why a chat operation failed, with the one `ErrorCode` each reason has on every transport.

use std::time::Duration;

use crate::protocol::ErrorCode;
use crate::store::StoreError;
use crate::validate::Invalid;

/// Every way an operation can fail; transports map it to a status or an `error` frame.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Input outside the limits of SPEC section 6.
    #[error("{0}")]
    Validation(String),
    #[error("no such channel")]
    NoChannel,
    #[error("no such user")]
    NoUser,
    #[error("no such message in this channel")]
    NoMessage,
    #[error("not a member of this channel")]
    NotMember,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("too many sends; retry later")]
    RateLimited { retry_after: Duration },
    /// PostgreSQL cannot serve right now; the client may retry.
    #[error("the database is unavailable; retry later")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl ChatError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ChatError::Validation(_) => ErrorCode::Validation,
            ChatError::NoChannel | ChatError::NoUser | ChatError::NoMessage => ErrorCode::NotFound,
            ChatError::NotMember | ChatError::Forbidden(_) => ErrorCode::Forbidden,
            ChatError::Conflict(_) => ErrorCode::Conflict,
            ChatError::RateLimited { .. } => ErrorCode::RateLimited,
            ChatError::Unavailable(_) => ErrorCode::Unavailable,
            ChatError::Unexpected(_) => ErrorCode::Internal,
        }
    }

    /// Milliseconds until a rate-limited request may succeed.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            ChatError::RateLimited { retry_after } => Some((retry_after.as_millis() as u64).max(1)),
            _ => None,
        }
    }
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ChatError::Conflict("conflict"),
            StoreError::Unavailable(e) => ChatError::Unavailable(e),
            StoreError::Unexpected(e) => ChatError::Unexpected(e),
        }
    }
}

impl From<Invalid> for ChatError {
    fn from(e: Invalid) -> Self {
        ChatError::Validation(e.0)
    }
}
