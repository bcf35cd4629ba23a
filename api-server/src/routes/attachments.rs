//! Attachments: `POST /api/channels/{id}/attachments` (a raw body, or the first file of a
//! multipart form) stores a file in the object store and records it; `GET
//! /api/attachments/{id}` streams it back to the channel's members, as a download that cannot
//! run as a page of our origin; `GET /api/attachments/{id}/thumbnail` gives a picture's
//! thumbnail, made on the first request and kept beside the file.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::TryStreamExt;
use serde::Deserialize;
use shared::protocol::Attachment;
use shared::store::NewAttachment;

use crate::error::ApiError;
use crate::extract::{AuthUser, Json, Path, Query};
use crate::files::{Stored, UploadError};
use crate::state::AppState;

/// Longest file name kept, in characters.
const MAX_NAME_CHARS: usize = 255;

#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    /// The file name of a raw upload.
    name: Option<String>,
}

/// `POST /api/channels/{id}/attachments?name=NAME`: 201 the attachment. The body is the file
/// (any `Content-Type` but `multipart/form-data`), or a form whose first file field is.
pub async fn upload(
    State(s): State<AppState>,
    me: AuthUser,
    Path(channel): Path<i64>,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> Result<(StatusCode, Json<Attachment>), ApiError> {
    s.chat.require_member(channel, me.id).await?;
    let too_large = || {
        ApiError::TooLarge(format!(
            "attachments are at most {} bytes",
            s.files.max_bytes
        ))
    };
    if content_length(req.headers()).is_some_and(|n| n > s.files.max_bytes) {
        return Err(too_large());
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (name, stored) = if multipart {
        let mut form = Multipart::from_request(req, &s)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let field = loop {
            match form.next_field().await {
                Ok(Some(f)) if f.file_name().is_some() => break f,
                Ok(Some(_)) => continue,
                Ok(None) => return Err(ApiError::BadRequest("the form has no file".into())),
                Err(e) => return Err(ApiError::BadRequest(e.body_text())),
            }
        };
        let name = field.file_name().map(str::to_owned);
        (name, s.files.put(channel, &id, field).await)
    } else {
        let body = req.into_body().into_data_stream();
        (q.name, s.files.put(channel, &id, body).await)
    };
    let Stored { size, content_type } = stored.map_err(|e| match e {
        UploadError::TooLarge(_) => too_large(),
        UploadError::Interrupted(m) => {
            ApiError::BadRequest(format!("the upload was interrupted: {m}"))
        }
        UploadError::Store(e) => {
            ApiError::Unexpected(anyhow::Error::new(e).context("store an attachment"))
        }
    })?;
    let new = NewAttachment {
        id,
        channel_id: channel,
        uploader_id: me.id,
        name: file_name(name.as_deref()),
        size: size as i64,
        content_type,
    };
    match s.store.record_attachment(&new).await {
        Ok(a) => Ok((StatusCode::CREATED, Json(a))),
        Err(e) => {
            // No row, so no object either.
            if let Err(d) = s.files.delete(channel, &new.id).await {
                tracing::warn!(id = new.id, error = %d, "an unrecorded attachment stays stored");
            }
            Err(e.into())
        }
    }
}

/// `GET /api/attachments/{id}`: the file, to members of its channel only.
pub async fn download(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (channel, a) = member_attachment(&s, &me, &id).await?;
    let bytes = s.files.get(channel, &id).await.map_err(store_error)?;
    let mut resp = Response::new(Body::from_stream(bytes.map_err(axum::Error::new)));
    let value = |v: &str| HeaderValue::from_str(v).map_err(|e| ApiError::Unexpected(e.into()));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, value(&a.content_type)?);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(a.size));
    h.insert(header::CONTENT_DISPOSITION, value(&disposition(&a))?);
    inert(h);
    Ok(resp)
}

/// `GET /api/attachments/{id}/thumbnail`: a picture's thumbnail (PNG or JPEG, fitting 320x320),
/// to members only; made on the first request and stored as `{id}.thumb` beside the file.
/// 404 for a file that is no picture of a supported type, or one that does not decode within
/// the limits.
pub async fn thumbnail(
    State(s): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (channel, a) = member_attachment(&s, &me, &id).await?;
    if a.thumbnail_url.is_none() {
        return Err(ApiError::NotFound(
            "this attachment is no picture with a thumbnail",
        ));
    }
    let key = format!("{id}.thumb");
    let thumb = match s.files.read(channel, &key).await.map_err(store_error)? {
        Some(kept) => kept,
        None => {
            let original = s
                .files
                .read(channel, &id)
                .await
                .map_err(store_error)?
                .ok_or(ApiError::NotFound("no such attachment"))?;
            let made = match crate::thumbs::make(original).await {
                Ok(t) => t,
                Err(crate::thumbs::ThumbError::Undecodable(e)) => {
                    tracing::info!(id, error = %e, "no thumbnail");
                    return Err(ApiError::NotFound("this picture cannot be decoded"));
                }
                Err(e) => return Err(ApiError::Unexpected(e.into())),
            };
            // Kept for the next request; a failure to keep it only costs making it again.
            if let Err(e) = s.files.write(channel, &key, made.clone()).await {
                tracing::warn!(id, error = %e, "a thumbnail could not be kept");
            }
            made.into()
        }
    };
    let content_type = crate::files::sniff(&thumb);
    let mut resp = Response::new(Body::from(thumb));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    inert(h);
    Ok(resp)
}

/// The attachment `id` and its channel, when `me` is a member of it (404, 403 otherwise).
async fn member_attachment(
    s: &AppState,
    me: &AuthUser,
    id: &str,
) -> Result<(i64, Attachment), ApiError> {
    let (channel, a) = s
        .store
        .attachment(id)
        .await?
        .ok_or(ApiError::NotFound("no such attachment"))?;
    s.chat.require_member(channel, me.id).await?;
    Ok((channel, a))
}

fn store_error(e: object_store::Error) -> ApiError {
    ApiError::Unexpected(anyhow::Error::new(e).context("read an attachment"))
}

/// Headers that keep a served file from running as a page of our origin, and let the browser
/// keep it a day (it never changes).
fn inert(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
}

/// `Content-Length`, when the client sent one that parses.
fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The client's file name without any directory, control characters or excess length;
/// `file` when nothing is left.
fn file_name(raw: Option<&str>) -> String {
    let base = raw.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let name: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    match name.trim() {
        "" | "." | ".." => "file".to_owned(),
        t => t.to_owned(),
    }
}

/// Images a browser can show without running anything are shown inline; everything else is a
/// download. The name is given twice: plain ASCII, and exact (RFC 6266 `filename*`).
fn disposition(a: &Attachment) -> String {
    let inline = matches!(
        a.content_type.as_str(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    );
    let ascii: String = a
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let exact = percent_encoding::utf8_percent_encode(&a.name, RFC5987).to_string();
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{exact}")
}

/// Everything but RFC 5987's `attr-char` is percent-encoded.
const RFC5987: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_directories_and_control_characters() {
        assert_eq!(file_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(file_name(Some("C:\\x\\report.pdf")), "report.pdf");
        assert_eq!(file_name(Some("a\nb\u{7}.txt")), "ab.txt");
        assert_eq!(file_name(Some("..")), "file");
        assert_eq!(file_name(None), "file");
    }

    #[test]
    fn dispositions_name_the_file_exactly_and_in_ascii() {
        let a = Attachment {
            id: "x".into(),
            name: "rapport \"été\".pdf".into(),
            size: 1,
            content_type: "application/pdf".into(),
            url: "/api/attachments/x".into(),
            thumbnail_url: None,
        };
        assert_eq!(
            disposition(&a),
            "attachment; filename=\"rapport __t__.pdf\"; \
             filename*=UTF-8''rapport%20%22%C3%A9t%C3%A9%22.pdf"
        );
    }
}
