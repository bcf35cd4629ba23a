-- send_messages() without a lookup or a read-back per message: same signature, result and
-- rules as migration 0002 (SPEC 5.1-5.3), whose function stays, renamed send_messages_exact(),
-- as the path for the rare batches this one does not decide itself.
--
-- 0002 spent ~46 us of PostgreSQL CPU per message of a 256-message batch, most of it in
-- statements that probe all 16 partitions of `messages` once per message (the stored-key
-- lookup before the insert, the read-back after it) and in a PL/pgSQL loop over the inputs.
-- This one, for a batch of several messages, runs in a subtransaction (a BEGIN ... EXCEPTION
-- block):
--   1. one SELECT over the inputs that locks the channel rows FOR UPDATE in id order (as 0002)
--      and, for each input, finds its channel (the locked rows: their last_seq), its
--      membership (one join with channel_members), its seq (last_seq + a running count, per
--      channel, of the inputs that store) and, if it stores, its id (next_message_id(), in
--      input order); and whether some reply_to falls outside 1..(the channel's seq before
--      that input);
--   2. one INSERT of the new rows (explicit id, and created_at = now(): the column default)
--      whose RETURNING advances channels.last_seq in the same statement.
-- A client_msg_id already stored, or twice in the batch, is not looked up: the insert hits the
-- unique index (channel_id, sender_id, client_msg_id) and raises unique_violation. The lock,
-- the insert and the update are all made by the subtransaction (so a channel row's lock and
-- update are one transaction id's, no MultiXact); on unique_violation the block rolls all of
-- it back (no row, no seq, no lock stays) and send_messages_exact() (0002's per-input
-- algorithm) decides the batch: it returns the originals, and a duplicate never consumes a
-- seq. It also decides a batch with
-- an out-of-range reply_to (rejecting one changes the seqs, and so the reply_to range, of
-- the inputs after it). One message (light load, the usual group-commit batch) takes the same
-- steps as scalar statements, which plan and start up cheaper.
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
    code    SMALLINT[];  -- per input: outcome, 0, 2 or 3 (the others go to the exact path)
    src     INT[];       -- per input: its own position if it stores, else NULL
    out_seq BIGINT[];    -- per input that stores: its seq
    out_id  BIGINT[];    -- per input that stores: its id
    exact   BOOLEAN := FALSE;
    v_last  BIGINT;
BEGIN
    IF n_in = 0 THEN
        RETURN;
    END IF;

    BEGIN
        IF n_in = 1 THEN
            SELECT c.last_seq INTO v_last FROM channels c WHERE c.id = p_channel[1] FOR UPDATE;
            IF NOT FOUND THEN
                code := '{2}';
            ELSIF NOT EXISTS (SELECT 1 FROM channel_members cm
                               WHERE cm.channel_id = p_channel[1]
                                 AND cm.user_id = p_sender[1]) THEN
                code := '{3}';
            ELSIF p_reply[1] IS NOT NULL AND (p_reply[1] < 1 OR p_reply[1] > v_last) THEN
                -- Outcome 4, unless the key is stored already (then 1): 0002 decides.
                IF p_key[1] IS NOT NULL THEN
                    exact := TRUE;
                END IF;
                code := '{4}';
            ELSE
                code := '{0}';
                src := '{1}';
                out_seq := ARRAY[v_last + 1];
                out_id := ARRAY[next_message_id()];
                INSERT INTO messages (id, channel_id, seq, sender_id, content, reply_to,
                                      client_msg_id, created_at)
                VALUES (out_id[1], p_channel[1], out_seq[1], p_sender[1], p_content[1],
                        p_reply[1], p_key[1], now());
                UPDATE channels c SET last_seq = out_seq[1] WHERE c.id = p_channel[1];
            END IF;
        ELSE
            SELECT array_agg(p.code), array_agg(CASE WHEN p.code = 0 THEN p.n END),
                   array_agg(p.q), array_agg(CASE WHEN p.code = 0 THEN next_message_id() END),
                   coalesce(bool_or(p.code = 0 AND p.r IS NOT NULL
                                    AND (p.r < 1 OR p.r >= p.q)), FALSE)
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
                WITH ins AS (
                    INSERT INTO messages (id, channel_id, seq, sender_id, content, reply_to,
                                          client_msg_id, created_at)
                    SELECT out_id[t.n], p_channel[t.n], out_seq[t.n], p_sender[t.n],
                           p_content[t.n], p_reply[t.n], p_key[t.n], now()
                      FROM generate_subscripts(code, 1) AS t(n)
                     WHERE code[t.n] = 0
                    RETURNING channel_id, seq)
                UPDATE channels c SET last_seq = k.q
                  FROM (SELECT ins.channel_id, max(ins.seq) AS q
                          FROM ins GROUP BY ins.channel_id) k
                 WHERE c.id = k.channel_id;
            END IF;
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
