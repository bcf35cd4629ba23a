-- Blocking: a user blocks another. While either blocks the other, their direct channel is
-- closed to the blocked user (they leave it and cannot get it back: `POST /api/dms` refuses
-- both), and the blocked user's `@mentions` of the blocker do not count.

CREATE TABLE user_blocks (
    blocker    BIGINT NOT NULL REFERENCES users (id),
    blocked    BIGINT NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker, blocked),
    CHECK (blocker <> blocked)
);

-- As in 0005, without the mentions of a user who blocked the sender.
CREATE OR REPLACE FUNCTION messages_mentions() RETURNS trigger LANGUAGE plpgsql AS $fn$
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
     WHERE NOT EXISTS (SELECT 1 FROM user_blocks b
                        WHERE b.blocker = u.id AND b.blocked = NEW.sender_id)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;
