-- Users, channels, membership and hash-partitioned messages.

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));

CREATE TABLE channels (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('group', 'direct')),
    name       TEXT NOT NULL,
    created_by BIGINT REFERENCES users (id),
    -- "lo:hi" user ids of a direct channel, so get-or-create is one unique key.
    dm_key     TEXT UNIQUE,
    last_seq   BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((kind = 'direct') = (dm_key IS NOT NULL))
);
CREATE INDEX channels_group_id ON channels (id) WHERE kind = 'group';

CREATE TABLE channel_members (
    channel_id    BIGINT NOT NULL REFERENCES channels (id),
    user_id       BIGINT NOT NULL REFERENCES users (id),
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    joined_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_members_user ON channel_members (user_id, channel_id);

-- 64-bit time-ordered message ids: milliseconds since 2025-01-01 in the high 42 bits,
-- a sequence in the low 22 bits.
CREATE SEQUENCE message_id_seq CYCLE MAXVALUE 4194303;
CREATE FUNCTION next_message_id() RETURNS BIGINT LANGUAGE sql VOLATILE AS $$
    SELECT ((floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT - 1735689600000) << 22)
           | nextval('message_id_seq')
$$;

CREATE TABLE messages (
    id            BIGINT NOT NULL,
    channel_id    BIGINT NOT NULL,
    seq           BIGINT NOT NULL,
    sender_id     BIGINT NOT NULL,
    content       TEXT NOT NULL,
    reply_to      BIGINT,
    client_msg_id TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, seq),
    UNIQUE (channel_id, sender_id, client_msg_id)
) PARTITION BY HASH (channel_id);

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format(
            'CREATE TABLE messages_p%s PARTITION OF messages FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
            i, i);
    END LOOP;
END
$$;
