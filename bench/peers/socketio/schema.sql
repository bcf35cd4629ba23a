-- The peer's tables, in its own database (created by init.js). A channel row carries the
-- channel's last seq; a send bumps it and inserts the message in one transaction.
CREATE TABLE IF NOT EXISTS channels (
    id         bigint PRIMARY KEY,
    last_seq   bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS messages (
    id            bigserial PRIMARY KEY,
    channel_id    bigint NOT NULL REFERENCES channels (id),
    seq           bigint NOT NULL,
    sender_id     bigint NOT NULL,
    content       text NOT NULL,
    client_msg_id text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, seq)
);
