-- Run on its own, outside a transaction, and expected to FAIL: an online migration that adds
-- a unique index on users.email over duplicate addresses aborts and leaves an INVALID index
-- behind (ZEP-PG-INDEX-VALID).
CREATE UNIQUE INDEX CONCURRENTLY users_email_unique_idx ON users (email);
