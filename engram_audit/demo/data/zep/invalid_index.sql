-- Run on its own, outside a transaction, and expected to FAIL: a unique index built
-- CONCURRENTLY over duplicate values aborts and leaves an INVALID index behind, exactly as
-- a failed online migration does in production.
CREATE UNIQUE INDEX CONCURRENTLY sessions_user_id_unique_idx ON sessions (user_id);
