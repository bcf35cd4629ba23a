-- Mentions: `@username` in a message's content names a member of its channel. They are kept
-- in `message_mentions` by triggers on `messages`, in the transaction that writes the
-- content (a send, whichever path of send_messages() inserts it; an edit; a delete, which
-- empties the content), so they always match the content as stored.

CREATE TABLE message_mentions (
    channel_id  BIGINT NOT NULL,
    message_seq BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    PRIMARY KEY (channel_id, message_seq, user_id)
);
-- A user's mentions, newest first.
CREATE INDEX message_mentions_user ON message_mentions (user_id, channel_id, message_seq);

-- `@name` at the start or after a character that cannot be part of a name; a name ends at the
-- first character that cannot be part of one (a trailing '.' or '-' may end a sentence: the
-- name is also tried without it). Case-insensitive, like usernames. Only members count.
CREATE FUNCTION messages_mentions() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM message_mentions
         WHERE channel_id = NEW.channel_id AND message_seq = NEW.seq;
    END IF;
    INSERT INTO message_mentions (channel_id, message_seq, user_id)
    SELECT DISTINCT NEW.channel_id, NEW.seq, u.id
      FROM regexp_matches(NEW.content, '(^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]+)', 'g') AS r(m)
      JOIN users u ON lower(u.username) IN (lower(r.m[2]), lower(rtrim(r.m[2], '.-')))
      JOIN channel_members cm ON cm.channel_id = NEW.channel_id AND cm.user_id = u.id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER messages_mentions AFTER INSERT ON messages
    FOR EACH ROW WHEN (strpos(NEW.content, '@') > 0) EXECUTE FUNCTION messages_mentions();
CREATE TRIGGER messages_mentions_edited AFTER UPDATE OF content ON messages
    FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content)
    EXECUTE FUNCTION messages_mentions();
