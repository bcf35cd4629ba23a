-- Full-text search of messages with nothing beyond PostgreSQL: a generated `tsvector` of each
-- message's content and one GIN index over (channel_id, search) on the partitioned table
-- (each partition gets its own). `channel_id` is in the index (btree_gin) because every
-- search is scoped to the caller's channels: a GIN scan intersects a channel's entries with a
-- word's, instead of reading every channel's matches and filtering them afterwards.
--
-- The column follows the content: an edit re-computes it in the edit's UPDATE, and a delete
-- (content '' from then on, 0004) leaves it empty, so a deleted message matches nothing.
--
-- The text search configuration is part of the column's definition (a generated column's
-- expression is fixed). It starts as 'simple' (no stemming, no stop words: safe for
-- mixed-language chat); `SELECT set_search_language('english')` rebuilds the column and the
-- index with another one (it rewrites `messages` under an exclusive lock: minutes at millions
-- of rows, sends wait). `search_language()` says which one is in force; the api-server
-- refuses to start when its SEARCH_LANGUAGE differs, so queries and the index never disagree.

CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE FUNCTION set_search_language(cfg regconfig) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    DROP INDEX IF EXISTS messages_search;
    ALTER TABLE messages DROP COLUMN IF EXISTS search;
    EXECUTE format('ALTER TABLE messages ADD COLUMN search tsvector '
                   'GENERATED ALWAYS AS (to_tsvector(%L::regconfig, content)) STORED', cfg);
    CREATE INDEX messages_search ON messages USING gin (channel_id, search);
END
$fn$;

-- The configuration `messages.search` is generated with (NULL: no such column).
CREATE FUNCTION search_language() RETURNS text LANGUAGE sql STABLE AS $fn$
    SELECT (regexp_match(pg_get_expr(d.adbin, d.adrelid), '''([^'']+)''::regconfig'))[1]
      FROM pg_attrdef d
      JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
     WHERE d.adrelid = 'messages'::regclass AND a.attname = 'search' AND NOT a.attisdropped
$fn$;

SELECT set_search_language('simple');
