//! The one error type of the HTTP boundary and its mapping to SPEC section 3 responses.

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use shared::chat::ChatError;
use shared::protocol::{ErrorBody, ErrorCode, ErrorDetail};
use shared::store::StoreError;
use shared::validate::Invalid;

/// Every way a request can fail. Each arm maps to one status and one `error.code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON, wrong field types, missing fields, bad path or query parameters.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed input outside the limits of SPEC section 6.
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("{0}")]
    TooLarge(String),
    #[error("too many requests")]
    RateLimited { retry_after: Duration },
    /// A dependency (PostgreSQL, Redis) cannot serve right now; the client may retry.
    #[error("service temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::Validation(_) => ErrorCode::Validation,
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::TooLarge(_) => ErrorCode::TooLarge,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Unexpected(_) => ErrorCode::Internal,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut retry_after_ms = None;
        let message = match &self {
            ApiError::Unexpected(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                "internal error".to_owned()
            }
            ApiError::Unavailable(e) => {
                tracing::warn!(error = format!("{e:#}"), "dependency unavailable");
                self.to_string()
            }
            ApiError::RateLimited { retry_after } => {
                retry_after_ms = Some(retry_after.as_millis().max(1) as u64);
                self.to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                retry_after_ms,
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(ms) = retry_after_ms {
            let secs = ms.div_ceil(1000).to_string();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ApiError::Conflict("conflict"),
            StoreError::Unavailable(e) => ApiError::Unavailable(e),
            StoreError::Unexpected(e) => ApiError::Unexpected(e),
        }
    }
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::Validation(m) => ApiError::Validation(m),
            ChatError::NoChannel => ApiError::NotFound("no such channel"),
            ChatError::NoUser => ApiError::NotFound("no such user"),
            ChatError::NoMessage => ApiError::NotFound("no such message in this channel"),
            ChatError::NotMember => ApiError::Forbidden("not a member of this channel"),
            ChatError::Forbidden(m) => ApiError::Forbidden(m),
            ChatError::Conflict(m) => ApiError::Conflict(m),
            ChatError::RateLimited { retry_after } => ApiError::RateLimited { retry_after },
            ChatError::Unavailable(e) => ApiError::Unavailable(e),
            ChatError::Unexpected(e) => ApiError::Unexpected(e),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Validation(e.0)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge("request body is too large".to_owned())
        } else {
            ApiError::BadRequest(r.body_text())
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}
