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

/// A message's attachments, in send order, as one JSON column (none on a deleted message); `m`
/// is the message. A macro, so `concat!` can put it into [`MESSAGE_COLS`] and other queries.
///
/// [`MESSAGE_COLS`]: super::messages::MESSAGE_COLS
macro_rules! attachments_col {
    () => {
        "CASE WHEN m.has_attachments AND m.deleted_at IS NULL THEN \
         (SELECT json_agg(json_build_object('id', a.id, 'name', a.name, 'size', a.size, \
                          'content_type', a.content_type, 'url', '/api/attachments/' || a.id) \
                          ORDER BY ma.position) \
            FROM message_attachments ma JOIN attachments a ON a.id = ma.attachment_id \
           WHERE ma.channel_id = m.channel_id AND ma.message_seq = m.seq) END"
    };
}
pub(super) use attachments_col;

/// Reads [`attachments_col`]'s column (built by the query itself, so it always decodes).
pub(super) fn attachments(v: Option<serde_json::Value>) -> Vec<Attachment> {
    v.and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
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
        Ok(Attachment {
            id: a.id.clone(),
            name: a.name.clone(),
            size: a.size,
            content_type: a.content_type.clone(),
            url: attachment_url(&a.id),
        })
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
                Attachment {
                    id: id.to_owned(),
                    name: r.get(1),
                    size: r.get(2),
                    content_type: r.get(3),
                    url: attachment_url(id),
                },
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
