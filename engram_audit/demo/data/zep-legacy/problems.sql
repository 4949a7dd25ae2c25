-- Planted beside the data (each is a finding of the production policy with the legacy preset):
-- * The "handbook" collection was created on pgvector < 0.5.0, so Zep gave it IVFFlat through
--   its create-index endpoint (vector_col_indexer.go: CREATE INDEX CONCURRENTLY ON <table> USING
--   ivfflat (embedding vector_cosine_ops) WITH (lists = <rows/1000, at least 1>), unnamed, so
--   PostgreSQL names it <table>_embedding_idx): ZEP-PG-VECTOR-INDEX wants Zep's HNSW.
CREATE INDEX ON docstore_handbook_1536 USING ivfflat (embedding vector_cosine_ops) WITH (lists = 1);
-- * TOAST autovacuum switched off on message (long transcripts live in its TOAST table), during
--   a bulk import, and never switched back on: ZEP-PG-AUTOVACUUM.
ALTER TABLE message SET (toast.autovacuum_enabled = false);
