-- A batch of sends in one statement, so one round trip stores it: called in autocommit mode,
-- the statement is its own transaction and its commit (and fsync) happens before the server
-- answers ReadyForQuery. Same rules as before (SPEC 5.1-5.3):
--   * channel rows locked FOR UPDATE in id order (concurrent batches cannot deadlock);
--   * seq = channels.last_seq + 1, ... under that lock (gap-free per channel);
--   * a (channel, sender, client_msg_id) already stored returns the original message; the same
--     key twice in one batch stores it once (read after the lock, so a concurrent send of the
--     same key has committed and is seen).
-- Returns one row per input, in input order. outcome: 0 stored now, 1 duplicate (the original
-- message), 2 no such channel, 3 sender not a member, 4 reply_to names no message. The message
-- columns are NULL for 2-4.

CREATE FUNCTION send_messages(
    p_channel BIGINT[], p_sender BIGINT[], p_content TEXT[], p_reply BIGINT[], p_key TEXT[])
RETURNS TABLE (outcome SMALLINT, id BIGINT, channel_id BIGINT, seq BIGINT, sender_id BIGINT,
               sender TEXT, content TEXT, reply_to BIGINT, client_msg_id TEXT,
               created_at TIMESTAMPTZ)
LANGUAGE plpgsql VOLATILE
-- Custom plans would re-plan every statement over all 16 partitions of `messages` on each
-- call (about 2 ms of CPU); the generic plans prune partitions at run time.
SET plan_cache_mode = force_generic_plan
AS $fn$
#variable_conflict use_column
DECLARE
    n_in     INT := coalesce(array_length(p_channel, 1), 0);
    ch_ids   BIGINT[];   -- locked channels, ascending
    ch_last  BIGINT[];   -- their last_seq, advanced as seqs are assigned
    member   BOOLEAN[];  -- per input: the sender is a member of the channel
    stored   BIGINT[];   -- per input: seq of a message already stored under its key
    first_of INT[];      -- per input: the first input of the batch with the same key
    winner   INT[];      -- per first input: the input that stores that key
    code     SMALLINT[];
    out_seq  BIGINT[];
    ins      INT[] := '{}';
    pos      INT;
    w        INT;
BEGIN
    IF n_in = 0 THEN
        RETURN;
    END IF;
    code := array_fill(0::SMALLINT, ARRAY[n_in]);
    out_seq := array_fill(NULL::BIGINT, ARRAY[n_in]);
    winner := array_fill(NULL::INT, ARRAY[n_in]);

    SELECT array_agg(l.id ORDER BY l.id), array_agg(l.last_seq ORDER BY l.id)
      INTO ch_ids, ch_last
      FROM (SELECT c.id, c.last_seq FROM channels c
             WHERE c.id = ANY (p_channel) ORDER BY c.id FOR UPDATE) l;
    ch_ids := coalesce(ch_ids, '{}');

    SELECT array_agg(EXISTS (SELECT 1 FROM channel_members cm
                              WHERE cm.channel_id = k.c AND cm.user_id = k.s) ORDER BY k.n),
           array_agg((SELECT m.seq FROM messages m
                       WHERE k.key IS NOT NULL AND m.channel_id = k.c
                         AND m.sender_id = k.s AND m.client_msg_id = k.key) ORDER BY k.n),
           array_agg(k.f ORDER BY k.n)
      INTO member, stored, first_of
      FROM (SELECT u.c, u.s, u.key, u.n::INT AS n,
                   CASE WHEN u.key IS NULL THEN u.n::INT
                        ELSE (min(u.n) OVER (PARTITION BY u.c, u.s, u.key))::INT END AS f
              FROM unnest(p_channel, p_sender, p_key) WITH ORDINALITY AS u(c, s, key, n)) k;

    FOR i IN 1..n_in LOOP
        pos := array_position(ch_ids, p_channel[i]);
        IF pos IS NULL THEN
            code[i] := 2;
            CONTINUE;
        END IF;
        IF NOT member[i] THEN
            code[i] := 3;
            CONTINUE;
        END IF;
        IF stored[i] IS NOT NULL THEN
            code[i] := 1;
            out_seq[i] := stored[i];
            CONTINUE;
        END IF;
        w := winner[first_of[i]];
        IF w IS NOT NULL THEN
            code[i] := 1;
            out_seq[i] := out_seq[w];
            CONTINUE;
        END IF;
        IF p_reply[i] IS NOT NULL AND (p_reply[i] < 1 OR p_reply[i] > ch_last[pos]) THEN
            code[i] := 4;
            CONTINUE;
        END IF;
        ch_last[pos] := ch_last[pos] + 1;
        out_seq[i] := ch_last[pos];
        IF p_key[i] IS NOT NULL THEN
            winner[first_of[i]] := i;
        END IF;
        ins := ins || i;
    END LOOP;

    IF cardinality(ins) > 0 THEN
        INSERT INTO messages (id, channel_id, seq, sender_id, content, reply_to, client_msg_id)
        SELECT next_message_id(), p_channel[t.j], out_seq[t.j], p_sender[t.j], p_content[t.j],
               p_reply[t.j], p_key[t.j]
          FROM unnest(ins) WITH ORDINALITY AS t(j, o)
         ORDER BY t.o;
        UPDATE channels c SET last_seq = k.q
          FROM unnest(ch_ids, ch_last) AS k(id, q)
         WHERE c.id = k.id AND c.last_seq <> k.q;
    END IF;

    RETURN QUERY
    SELECT o.code, m.id, m.channel_id, m.seq, m.sender_id, m.username, m.content, m.reply_to,
           m.client_msg_id, m.created_at
      FROM unnest(code, out_seq) WITH ORDINALITY AS o(code, q, n)
      LEFT JOIN LATERAL (
            SELECT mm.id, mm.channel_id, mm.seq, mm.sender_id, u.username, mm.content,
                   mm.reply_to, mm.client_msg_id, mm.created_at
              FROM messages mm JOIN users u ON u.id = mm.sender_id
             WHERE mm.channel_id = p_channel[o.n] AND mm.seq = o.q
             -- LIMIT keeps this a per-row primary-key lookup (not pulled up into a join
             -- that could scan every partition).
             LIMIT 1) m ON TRUE
     ORDER BY o.n;
END
$fn$;
