//! Extractors: JSON, path and query wrappers whose rejections come out as [`ApiError`], the
//! verified caller from `Authorization: Bearer`, and the client address for rate limiting.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::auth::{bearer, TokenError};

use crate::error::ApiError;
use crate::state::AppState;

/// `axum::Json` with rejections in the API's error shape (400 `bad_request`, 413 `too_large`).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path` with rejections as 400 `bad_request`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// `axum::extract::Query` with rejections as 400 `bad_request`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// The caller, from a verified session token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub name: String,
}

impl AuthUser {
    /// The caller as the chat operations name them.
    pub fn actor(&self) -> shared::chat::Actor {
        shared::chat::Actor {
            id: self.id,
            name: self.name.clone(),
        }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let claims = state.jwt.verify(token).map_err(|e| match e {
            TokenError::Expired => ApiError::Unauthorized("token expired"),
            TokenError::Invalid => ApiError::Unauthorized("invalid token"),
        })?;
        tracing::Span::current().record("user_id", claims.sub);
        // A valid token may outlive its user: refused like at the edge's handshake (one
        // primary-key read per request; before, writes by a deleted user failed with 500).
        if state.store.user_by_id(claims.sub).await?.is_none() {
            return Err(ApiError::Unauthorized("unknown user"));
        }
        Ok(AuthUser {
            id: claims.sub,
            name: claims.name,
        })
    }
}

/// The client's address: the last `X-Forwarded-For` hop (the one the proxy in front of us
/// appended; earlier hops are client-supplied), else the peer address.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .next_back();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientAddr(
            forwarded.or(peer).unwrap_or(IpAddr::from([0, 0, 0, 0])),
        ))
    }
}
