//! Where attachments' bytes live: an `object_store` (a directory under `DATA_DIR` by default,
//! or the store an `ATTACHMENT_STORE` URL names: `file://` or an S3-compatible `s3://` bucket),
//! each object at `{channel}/{id}` under the store's prefix. Uploads stream into a multipart
//! upload that becomes visible only when it completes; one cut short is aborted, also when the
//! request is dropped mid-body, so nothing partial is ever stored.

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

/// How many leading bytes are kept for sniffing the type.
const SNIFF_BYTES: usize = 8192;

/// The attachments' object store and its upload limit; cheap to clone.
#[derive(Clone)]
pub struct Files {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    /// Largest upload, in bytes.
    pub max_bytes: u64,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// Why an upload stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    /// The request body failed (the client went away, a malformed multipart body).
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    #[error(transparent)]
    Store(#[from] object_store::Error),
}

/// What an upload stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub size: u64,
    pub content_type: String,
}

impl Files {
    /// `url` (`file:///...` or `s3://bucket/prefix`, with `options` such as `aws_endpoint`,
    /// `aws_region`, `aws_access_key_id`, `aws_allow_http`) or, without one, the directory
    /// `{data_dir}/attachments` (created if missing).
    pub fn open(
        url: Option<&str>,
        options: &[(String, String)],
        data_dir: &std::path::Path,
        max_bytes: u64,
    ) -> anyhow::Result<Self> {
        let (store, prefix): (Arc<dyn ObjectStore>, Path) = match url {
            Some(u) => {
                let parsed =
                    url::Url::parse(u).with_context(|| format!("ATTACHMENT_STORE={u:?}"))?;
                let (store, prefix) =
                    object_store::parse_url_opts(&parsed, options.iter().cloned())
                        .with_context(|| format!("ATTACHMENT_STORE={u:?}"))?;
                (Arc::from(store), prefix)
            }
            None => {
                let dir = data_dir.join("attachments");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("create {}", dir.display()))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .with_context(|| format!("open {}", dir.display()))?;
                (Arc::new(store), Path::default())
            }
        };
        Ok(Files {
            store,
            prefix,
            max_bytes,
        })
    }

    /// Lists the store's top level once: an unreachable endpoint, a missing bucket or refused
    /// credentials fail the start, not the first upload.
    pub async fn check(&self) -> anyhow::Result<()> {
        self.store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .with_context(|| format!("the attachment store {} cannot be listed", self.store))?;
        Ok(())
    }

    fn path(&self, channel: i64, id: &str) -> Path {
        self.prefix.clone().join(channel.to_string()).join(id)
    }

    /// Streams `body` into the object `{channel}/{id}`: complete and sniffed, or nothing.
    pub async fn put<E: std::fmt::Display>(
        &self,
        channel: i64,
        id: &str,
        body: impl futures_util::Stream<Item = Result<Bytes, E>>,
    ) -> Result<Stored, UploadError> {
        let upload = self.store.put_multipart(&self.path(channel, id)).await?;
        let mut pending = Pending(None);
        let copied = self
            .copy(pending.0.insert(WriteMultipart::new(upload)), body)
            .await;
        let (size, head) = match copied {
            Ok(c) => c,
            Err(e) => {
                if let Some(w) = pending.0.take() {
                    abort(w).await;
                }
                return Err(e);
            }
        };
        if let Some(w) = pending.0.take() {
            w.finish().await?;
        }
        Ok(Stored {
            size,
            content_type: sniff(&head).to_owned(),
        })
    }

    /// Copies `body` into `w`, at most `max_bytes`; returns the size and the leading bytes.
    async fn copy<E: std::fmt::Display>(
        &self,
        w: &mut WriteMultipart,
        body: impl futures_util::Stream<Item = Result<Bytes, E>>,
    ) -> Result<(u64, Vec<u8>), UploadError> {
        use futures_util::StreamExt;
        let mut body = std::pin::pin!(body);
        let (mut size, mut head) = (0u64, Vec::new());
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| UploadError::Interrupted(e.to_string()))?;
            size += chunk.len() as u64;
            if size > self.max_bytes {
                return Err(UploadError::TooLarge(self.max_bytes));
            }
            if head.len() < SNIFF_BYTES {
                let n = (SNIFF_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..n]);
            }
            // Back pressure: at most two parts in flight.
            w.wait_for_capacity(2).await?;
            w.write(&chunk);
        }
        Ok((size, head))
    }

    /// The object's bytes, as a stream.
    pub async fn get(
        &self,
        channel: i64,
        id: &str,
    ) -> Result<
        impl futures_util::Stream<Item = Result<Bytes, object_store::Error>>,
        object_store::Error,
    > {
        Ok(self.store.get(&self.path(channel, id)).await?.into_stream())
    }

    /// A small object's bytes, whole (a thumbnail, a picture to make one of); `None` when
    /// there is no such object.
    pub async fn read(
        &self,
        channel: i64,
        key: &str,
    ) -> Result<Option<Bytes>, object_store::Error> {
        match self.store.get(&self.path(channel, key)).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores a small object whole (a thumbnail).
    pub async fn write(
        &self,
        channel: i64,
        key: &str,
        bytes: Vec<u8>,
    ) -> Result<(), object_store::Error> {
        self.store
            .put(&self.path(channel, key), bytes.into())
            .await
            .map(drop)
    }

    /// Removes the object (an upload whose row could not be written).
    pub async fn delete(&self, channel: i64, id: &str) -> Result<(), object_store::Error> {
        self.store.delete(&self.path(channel, id)).await
    }
}

/// An upload under way; dropped before it finished (the request went away mid-body), it is
/// aborted in the background: a bucket keeps no unfinished multipart upload, a directory no
/// staging file.
struct Pending(Option<WriteMultipart>);

impl Drop for Pending {
    fn drop(&mut self) {
        if let (Some(w), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(abort(w));
        }
    }
}

async fn abort(w: WriteMultipart) {
    if let Err(e) = w.abort().await {
        tracing::warn!(error = %e, "aborting an upload failed");
    }
}

/// The type of a file from its leading bytes: a known binary signature, else UTF-8 text
/// (HTML, XML and scripts included: served as plain text), else `application/octet-stream`.
/// Never what the client claims.
pub fn sniff(head: &[u8]) -> &'static str {
    if let Some(t) = infer::get(head) {
        if t.matcher_type() != infer::MatcherType::Text {
            return t.mime_type();
        }
    }
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        // Cut in the middle of a character by the sniffing window: still text.
        Err(e) => e.error_len().is_none() && head.len() >= SNIFF_BYTES,
    };
    if text && !head.contains(&0) {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
        assert_eq!(sniff(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(
            sniff(b"<html><script>x</script>"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            sniff(b"<?xml version=\"1.0\"?><svg/>"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(sniff(b"\0\x01\x02binary"), "application/octet-stream");
        assert_eq!(sniff(b"\xff\xfe\xfd"), "application/octet-stream");
    }
}
