-- Attachments: files uploaded to a channel, their bytes in an object store (a directory, or
-- an S3-compatible bucket), their facts here. A row is written only once its object is
-- complete, so an upload that fails or is cut off leaves no row (and the api-server deletes
-- its partial object). A message carries attachments its sender uploaded to its channel; the
-- link is written in the send's transaction. The same attachment may be carried again.

CREATE TABLE attachments (
    -- Random (128 bits, hex): the download URL names it.
    id           TEXT PRIMARY KEY,
    channel_id   BIGINT NOT NULL REFERENCES channels (id),
    uploader_id  BIGINT NOT NULL REFERENCES users (id),
    -- The file name the client gave (a download suggests it), at most 255 characters.
    name         TEXT NOT NULL,
    size         BIGINT NOT NULL,
    -- Sniffed from the bytes, never taken from the client.
    content_type TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE message_attachments (
    channel_id    BIGINT NOT NULL,
    message_seq   BIGINT NOT NULL,
    -- Order of the attachments in the send.
    position      SMALLINT NOT NULL,
    attachment_id TEXT NOT NULL REFERENCES attachments (id),
    PRIMARY KEY (channel_id, message_seq, position)
);

-- Set with the links, in the send's transaction: a message read (history, resume, gap fill)
-- looks for attachments only where there are some, not with a probe per message.
ALTER TABLE messages ADD COLUMN has_attachments BOOLEAN NOT NULL DEFAULT false;
