-- A channel is an event log. Every change to a channel after a message (an edit, a delete, a
-- reaction added or removed) takes the channel's next seq, in the same transaction as the
-- change (a thread's counters change with the reply, in its transaction; the
-- `thread_updated` event announcing them takes the next seq right after), so it shares the
-- gap-free per-channel seq stream of the messages (SPEC 5.2) and the edges' machinery
-- (exactly once, in seq order, gap fill, resume) carries it unchanged.
--
-- Where the log lives: `messages` keeps one row per message in its *current* state (history
-- reads it with seq cursors, exactly as before, and the hot send path `send_messages()` is
-- unchanged: two triggers that fire only for replies keep threads); `channel_events` holds every other entry of the log, keyed like messages by
-- (channel_id, seq). The log of a channel is the union of the two, disjoint by seq: a gap
-- fill or a resume reads both ranges by primary key and merges them.

-- Current state of a message.
ALTER TABLE messages
    ADD COLUMN edited_at     TIMESTAMPTZ,
    -- A tombstone: content is '' from then on (removed from storage, not only hidden).
    ADD COLUMN deleted_at    TIMESTAMPTZ,
    -- On a reply: the seq of its thread's root (threads are flat: a reply to a reply belongs
    -- to the same thread).
    ADD COLUMN thread_root   BIGINT,
    -- On a root: its replies so far and when the last one came.
    ADD COLUMN reply_count   BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN last_reply_at TIMESTAMPTZ;

-- A thread's replies, paged by seq.
CREATE INDEX messages_thread ON messages (channel_id, thread_root, seq)
    WHERE thread_root IS NOT NULL;

-- A reply's thread and its root's counters are written with the reply, in its transaction,
-- whichever path of send_messages() inserts it: the thread is found before the insert (no
-- side effect, so an insert that ON CONFLICT skips changes nothing), the root is counted
-- after it (only for rows really inserted; a batch rolled back to its savepoint takes its
-- counts back with it). Sends lock the channel row first, so roots are updated one batch
-- at a time.
CREATE FUNCTION messages_thread_root() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    SELECT coalesce(p.thread_root, p.seq) INTO NEW.thread_root
      FROM messages p WHERE p.channel_id = NEW.channel_id AND p.seq = NEW.reply_to;
    RETURN NEW;
END
$fn$;

CREATE FUNCTION messages_count_reply() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE messages SET reply_count = reply_count + 1,
                        last_reply_at = greatest(last_reply_at, NEW.created_at)
     WHERE channel_id = NEW.channel_id AND seq = NEW.thread_root;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER messages_thread_root BEFORE INSERT ON messages
    FOR EACH ROW WHEN (NEW.reply_to IS NOT NULL) EXECUTE FUNCTION messages_thread_root();
CREATE TRIGGER messages_count_reply AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.thread_root IS NOT NULL) EXECUTE FUNCTION messages_count_reply();

-- Edits, deletes and reactions name a message by its id (SPEC 3).
CREATE INDEX messages_channel_id_id ON messages (channel_id, id);

-- A member's role: the creator of a group channel is its owner; owners and admins may delete
-- anyone's message.
ALTER TABLE channel_members
    ADD COLUMN role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member'));
UPDATE channel_members m SET role = 'owner'
  FROM channels c
 WHERE c.id = m.channel_id AND c.kind = 'group' AND c.created_by = m.user_id;

-- One row per sequenced change that is not a message.
CREATE TABLE channel_events (
    channel_id    BIGINT NOT NULL,
    seq           BIGINT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('message_edited', 'message_deleted',
                                                'reaction_added', 'reaction_removed',
                                                'thread_updated')),
    -- The message changed (thread_updated: the thread's root).
    message_id    BIGINT NOT NULL,
    message_seq   BIGINT NOT NULL,
    -- Who made the change (thread_updated: the sender of the reply that caused it).
    user_id       BIGINT NOT NULL,
    -- message_edited: the new content (NULL once the message is deleted: a deleted message's
    -- content is removed from its edits too).
    content       TEXT,
    -- reaction_*: the emoji and its count on the message after the change.
    emoji         TEXT,
    -- reaction_*: that count; thread_updated: the root's reply_count.
    count         BIGINT,
    -- message_edited: edited_at; thread_updated: last_reply_at.
    at            TIMESTAMPTZ,
    -- Idempotency key of the change (same user, same channel: one event).
    client_msg_id TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, seq),
    UNIQUE (channel_id, user_id, client_msg_id)
) PARTITION BY HASH (channel_id);

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format(
            'CREATE TABLE channel_events_p%s PARTITION OF channel_events '
            'FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
    END LOOP;
END
$$;

-- Reactions as they stand: one emoji per user per message, counted once.
CREATE TABLE message_reactions (
    channel_id  BIGINT NOT NULL,
    message_seq BIGINT NOT NULL,
    emoji       TEXT NOT NULL,
    user_id     BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, message_seq, emoji, user_id)
);
