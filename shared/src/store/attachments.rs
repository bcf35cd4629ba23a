//! Attachments' facts (migration 0008): recording a file once its bytes are stored, finding
//! it for a download, checking the ids a send carries, and linking them to the message in the
//! send's transaction. The bytes themselves live in an object store the api-server owns.

use super::{Store, StoreError};
use crate::protocol::Attachment;

/// A file whose bytes are stored, to be recorded.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub id: String,
    pub channel_id: i64,
    pub uploader_id: i64,
    pub name: String,
    pub size: i64,
    pub content_type: String,
}

/// The download URL of an attachment, relative to the api-server.
pub fn attachment_url(id: &str) -> String {
    format!("/api/attachments/{id}")
}

/// The (sniffed) types of the pictures that get a thumbnail.
pub const THUMBNAIL_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The thumbnail URL of an attachment of type `content_type`, if it is a picture that gets one.
pub fn thumbnail_url(id: &str, content_type: &str) -> Option<String> {
    THUMBNAIL_TYPES
        .contains(&content_type)
        .then(|| format!("/api/attachments/{id}/thumbnail"))
}

/// An attachment as clients see it, its URLs made from its id and type.
fn attachment(id: String, name: String, size: i64, content_type: String) -> Attachment {
    Attachment {
        url: attachment_url(&id),
        thumbnail_url: thumbnail_url(&id, &content_type),
        id,
        name,
        size,
        content_type,
    }
}

/// A message's attachments, in send order, as one JSON column (none on a deleted message); `m`
/// is the message. A macro, so `concat!` can put it into [`MESSAGE_COLS`] and other queries.
///
/// [`MESSAGE_COLS`]: super::messages::MESSAGE_COLS
macro_rules! attachments_col {
    () => {
        "CASE WHEN m.has_attachments AND m.deleted_at IS NULL THEN \
         (SELECT json_agg(json_build_object('id', a.id, 'name', a.name, 'size', a.size, \
                          'content_type', a.content_type) ORDER BY ma.position) \
            FROM message_attachments ma JOIN attachments a ON a.id = ma.attachment_id \
           WHERE ma.channel_id = m.channel_id AND ma.message_seq = m.seq) END"
    };
}
pub(super) use attachments_col;

/// An attachment as [`attachments_col`] has it.
#[derive(serde::Deserialize)]
struct Row {
    id: String,
    name: String,
    size: i64,
    content_type: String,
}

/// Reads [`attachments_col`]'s column (built by the query itself, so it always decodes).
pub(super) fn attachments(v: Option<serde_json::Value>) -> Vec<Attachment> {
    v.and_then(|v| serde_json::from_value::<Vec<Row>>(v).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|r| attachment(r.id, r.name, r.size, r.content_type))
        .collect()
}

impl Store {
    /// Records an uploaded file.
    pub async fn record_attachment(&self, a: &NewAttachment) -> Result<Attachment, StoreError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO attachments (id, channel_id, uploader_id, name, size, content_type)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &a.id,
                &a.channel_id,
                &a.uploader_id,
                &a.name,
                &a.size,
                &a.content_type,
            ],
        )
        .await?;
        Ok(attachment(
            a.id.clone(),
            a.name.clone(),
            a.size,
            a.content_type.clone(),
        ))
    }

    /// An attachment and the channel it was uploaded to.
    pub async fn attachment(&self, id: &str) -> Result<Option<(i64, Attachment)>, StoreError> {
        let c = self.client().await?;
        let q = c
            .prepare_cached(
                "SELECT channel_id, name, size, content_type FROM attachments WHERE id = $1",
            )
            .await?;
        Ok(c.query_opt(&q, &[&id]).await?.map(|r| {
            (
                r.get(0),
                attachment(id.to_owned(), r.get(1), r.get(2), r.get(3)),
            )
        }))
    }

    /// The ids among `ids` that `user` did not upload to `channel` (or that do not exist).
    pub async fn foreign_attachments(
        &self,
        channel: i64,
        user: i64,
        ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let c = self.client().await?;
        let q = c
            .prepare_cached(
                "SELECT k.id FROM unnest($1::text[]) AS k(id)
                  WHERE NOT EXISTS (SELECT 1 FROM attachments a WHERE a.id = k.id
                                       AND a.channel_id = $2 AND a.uploader_id = $3)",
            )
            .await?;
        Ok(c.query(&q, &[&ids, &channel, &user])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }
}
