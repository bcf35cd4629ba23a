-- send_messages() without a lookup or a read-back per message: same signature, result and
-- rules as migration 0002 (SPEC 5.1-5.3), whose function stays, renamed send_messages_exact(),
-- as the path for the rare batches this one does not decide itself.
--
-- 0002 spent ~46 us of PostgreSQL CPU per message of a 256-message batch, most of it in
-- statements that probe all 16 partitions of `messages` once per message (the stored-key
-- lookup before the insert, the read-back after it) and in a PL/pgSQL loop over the inputs.
-- This one, for a batch of several messages, runs a subtransaction (BEGIN ... EXCEPTION) of:
--   1. one SELECT over the inputs that locks the channel rows FOR UPDATE in id order (as 0002)
--      and, for each input, finds its channel (the locked rows: their last_seq), its
--      membership (one join with channel_members), its seq (last_seq + a running count, per
--      channel, of the inputs that store: a window over the inputs) and, if it stores, its id
--      (next_message_id(), in input order); and whether some reply_to falls outside
--      1..(the channel's seq before that input);
--   2. one INSERT of the new rows (explicit id, and created_at = now(): the column default);
--   3. one UPDATE of channels.last_seq (an index scan of the locked rows).
-- A client_msg_id already stored, or twice in the batch, is not looked up: the insert hits the
-- unique index (channel_id, sender_id, client_msg_id) and raises unique_violation. The lock,
-- the insert and the update are all the subtransaction's (so a channel row's lock and update
-- are one transaction id's: no MultiXact); on unique_violation the block rolls all of it back
-- (no row, no seq, no lock stays) and send_messages_exact() (0002's per-input algorithm)
-- decides the batch: it returns the originals, and a duplicate never consumes a seq. It also
-- decides a batch with an out-of-range reply_to (rejecting one changes the seqs, and so the
-- reply_to range, of the inputs after it).
-- One message (light load) takes the same steps as scalar statements, which start up cheaper,
-- without a subtransaction: INSERT ... ON CONFLICT DO NOTHING finds a stored key before
-- anything is written.
-- The reply is built from the inputs and the arrays above (usernames: one lookup of the
-- distinct senders), with no read-back.
-- Outcomes as in 0002: 0 stored now, 1 duplicate (the original message), 2 no such channel,
-- 3 sender not a member, 4 reply_to names no message; the message columns are NULL for 2-4.

ALTER FUNCTION send_messages(BIGINT[], BIGINT[], TEXT[], BIGINT[], TEXT[])
    RENAME TO send_messages_exact;

CREATE FUNCTION send_messages(
    p_channel BIGINT[], p_sender BIGINT[], p_content TEXT[], p_reply BIGINT[], p_key TEXT[])
RETURNS TABLE (outcome SMALLINT, id BIGINT, channel_id BIGINT, seq BIGINT, sender_id BIGINT,
               sender TEXT, content TEXT, reply_to BIGINT, client_msg_id TEXT,
               created_at TIMESTAMPTZ)
LANGUAGE plpgsql VOLATILE
-- As in 0002: generic plans, planned once per session (custom plans re-plan on every call).
SET plan_cache_mode = force_generic_plan
AS $fn$
#variable_conflict use_column
DECLARE
    n_in    INT := coalesce(array_length(p_channel, 1), 0);
    code    SMALLINT[];  -- per input: outcome, 0, 2, 3 or 4 (duplicates: the exact path)
    src     INT[];       -- per input: its own position if it stores, else NULL
    out_seq BIGINT[];    -- per input that stores: its seq
    out_id  BIGINT[];    -- per input that stores: its id
    exact   BOOLEAN := FALSE;  -- send_messages_exact() decides the batch
    v_last  BIGINT;
    v_seq   BIGINT;
    v_id    BIGINT;
BEGIN
    IF n_in = 0 THEN
        RETURN;
    END IF;

    IF n_in = 1 THEN
        -- One message (light load): the same steps as scalar statements, which start up
        -- cheaper, and no subtransaction: ON CONFLICT finds a stored key before anything is
        -- written.
        SELECT c.last_seq INTO v_last FROM channels c WHERE c.id = p_channel[1] FOR UPDATE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 2::SMALLINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
                                NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::BIGINT, NULL::TEXT,
                                NULL::TIMESTAMPTZ;
            RETURN;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM channel_members cm
                        WHERE cm.channel_id = p_channel[1] AND cm.user_id = p_sender[1]) THEN
            RETURN QUERY SELECT 3::SMALLINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
                                NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::BIGINT, NULL::TEXT,
                                NULL::TIMESTAMPTZ;
            RETURN;
        END IF;
        IF p_reply[1] IS NOT NULL AND (p_reply[1] < 1 OR p_reply[1] > v_last) THEN
            -- Outcome 4, unless the key is stored already (then 1): 0002 decides.
            IF p_key[1] IS NOT NULL THEN
                RETURN QUERY SELECT * FROM send_messages_exact(p_channel, p_sender, p_content,
                                                               p_reply, p_key);
                RETURN;
            END IF;
            RETURN QUERY SELECT 4::SMALLINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
                                NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::BIGINT, NULL::TEXT,
                                NULL::TIMESTAMPTZ;
            RETURN;
        END IF;
        v_seq := v_last + 1;
        v_id := next_message_id();
        INSERT INTO messages (id, channel_id, seq, sender_id, content, reply_to, client_msg_id,
                              created_at)
        VALUES (v_id, p_channel[1], v_seq, p_sender[1], p_content[1], p_reply[1], p_key[1],
                now())
        ON CONFLICT (channel_id, sender_id, client_msg_id) DO NOTHING;
        IF NOT FOUND THEN
            -- The key is stored: nothing written, 0002 returns the original.
            RETURN QUERY SELECT * FROM send_messages_exact(p_channel, p_sender, p_content,
                                                           p_reply, p_key);
            RETURN;
        END IF;
        UPDATE channels c SET last_seq = v_seq WHERE c.id = p_channel[1];
        RETURN QUERY SELECT 0::SMALLINT, v_id, p_channel[1], v_seq, p_sender[1],
                            (SELECT u.username FROM users u WHERE u.id = p_sender[1]),
                            p_content[1], p_reply[1], p_key[1], now();
        RETURN;
    END IF;

    BEGIN
        SELECT array_agg(p.code), array_agg(CASE WHEN p.code = 0 THEN p.n END),
               array_agg(p.q), array_agg(CASE WHEN p.code = 0 THEN next_message_id() END),
               coalesce(bool_or(p.code = 0 AND p.r IS NOT NULL AND (p.r < 1 OR p.r >= p.q)),
                        FALSE)
          INTO code, src, out_seq, out_id, exact
          FROM (SELECT k.n::INT AS n, k.r,
                       CASE WHEN k.last IS NULL THEN 2 WHEN NOT k.member THEN 3 ELSE 0
                       END::SMALLINT AS code,
                       CASE WHEN k.member
                            THEN k.last + count(*) FILTER (WHERE k.member)
                                              OVER (PARTITION BY k.c ORDER BY k.n)
                       END AS q
                  FROM (SELECT u.n, u.c, u.r, l.last_seq AS last,
                               (l.last_seq IS NOT NULL AND cm.user_id IS NOT NULL) AS member
                          FROM unnest(p_channel, p_sender, p_reply)
                               WITH ORDINALITY AS u(c, s, r, n)
                          -- Every locked row is read (each has an input), in id order.
                          LEFT JOIN (SELECT c.id, c.last_seq FROM channels c
                                      WHERE c.id = ANY (p_channel)
                                      ORDER BY c.id FOR UPDATE) l ON l.id = u.c
                          LEFT JOIN channel_members cm
                                 ON cm.channel_id = u.c AND cm.user_id = u.s) k
                 ORDER BY k.n) p;
        IF NOT exact THEN
            INSERT INTO messages (id, channel_id, seq, sender_id, content, reply_to,
                                  client_msg_id, created_at)
            SELECT out_id[t.n], p_channel[t.n], out_seq[t.n], p_sender[t.n], p_content[t.n],
                   p_reply[t.n], p_key[t.n], now()
              FROM generate_subscripts(code, 1) AS t(n)
             WHERE code[t.n] = 0;
            -- (c.id = ANY: an index scan of the locked rows, not a scan of the table.)
            UPDATE channels c SET last_seq = k.q
              FROM (SELECT u.c, max(u.q) AS q FROM unnest(p_channel, out_seq) AS u(c, q)
                     WHERE u.q IS NOT NULL GROUP BY u.c) k
             WHERE c.id = k.c AND c.id = ANY (p_channel);
        END IF;
    EXCEPTION WHEN unique_violation THEN
        exact := TRUE;
    END;
    IF exact THEN
        RETURN QUERY SELECT * FROM send_messages_exact(p_channel, p_sender, p_content, p_reply,
                                                       p_key);
        RETURN;
    END IF;

    RETURN QUERY
    SELECT o.code, out_id[o.f], p_channel[o.f], out_seq[o.f], p_sender[o.f], u.username,
           p_content[o.f], p_reply[o.f], p_key[o.f], CASE WHEN o.f IS NOT NULL THEN now() END
      FROM unnest(code, src) WITH ORDINALITY AS o(code, f, n)
      LEFT JOIN (SELECT u.id, u.username FROM users u WHERE u.id = ANY (p_sender)) u
             ON u.id = p_sender[o.f]
     ORDER BY o.n;
END
$fn$;
