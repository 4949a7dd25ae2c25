-- pgvector part of the Zep-shaped schema. Planted: an IVFFlat index where HNSW is wanted,
-- an HNSW index with weak parameters, and a vector column with no index at all.

CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;

CREATE TABLE message_embeddings (
    uuid          uuid PRIMARY KEY,
    message_uuid  uuid NOT NULL REFERENCES messages (uuid) ON DELETE CASCADE,
    embedding     vector(1536) NOT NULL
);
CREATE TABLE fact_embeddings (
    uuid       uuid PRIMARY KEY,
    fact_uuid  uuid NOT NULL REFERENCES facts (uuid),
    embedding  vector(1536) NOT NULL
);
CREATE TABLE entity_embeddings (
    uuid       uuid PRIMARY KEY,
    name       text NOT NULL,
    embedding  vector(1536) NOT NULL
);
CREATE TABLE summary_embeddings (
    uuid        uuid PRIMARY KEY,
    session_id  text NOT NULL REFERENCES sessions (session_id),
    embedding   vector(1536) NOT NULL
);

-- Each row's vector is random; referencing g makes the subquery run per row.
INSERT INTO message_embeddings (uuid, message_uuid, embedding)
SELECT md5('message-embedding' || m.uuid)::uuid, m.uuid,
       ARRAY(SELECT random() FROM generate_series(1, 1536) WHERE m.id > 0)::vector(1536)
FROM messages AS m;
INSERT INTO fact_embeddings (uuid, fact_uuid, embedding)
SELECT md5('fact-embedding' || f.uuid)::uuid, f.uuid,
       ARRAY(SELECT random() FROM generate_series(1, 1536) WHERE f.fact IS NOT NULL)::vector(1536)
FROM facts AS f;
INSERT INTO entity_embeddings (uuid, name, embedding)
SELECT md5('entity' || g)::uuid, 'entity ' || g,
       ARRAY(SELECT random() FROM generate_series(1, 1536) WHERE g > 0)::vector(1536)
FROM generate_series(1, 50) AS g;
INSERT INTO summary_embeddings (uuid, session_id, embedding)
SELECT md5('summary' || s.session_id)::uuid, s.session_id,
       ARRAY(SELECT random() FROM generate_series(1, 1536) WHERE s.id > 0)::vector(1536)
FROM sessions AS s;

-- The recommended index: HNSW, cosine, m = 16, ef_construction = 64.
CREATE INDEX message_embeddings_embedding_hnsw_idx ON message_embeddings
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
-- IVFFlat where the production policy asks for HNSW.
CREATE INDEX fact_embeddings_embedding_ivfflat_idx ON fact_embeddings
    USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100);
-- HNSW with parameters below the recommended m = 16, ef_construction = 64.
CREATE INDEX entity_embeddings_embedding_hnsw_idx ON entity_embeddings
    USING hnsw (embedding vector_l2_ops) WITH (m = 4, ef_construction = 16);
-- summary_embeddings.embedding: deliberately no index.
