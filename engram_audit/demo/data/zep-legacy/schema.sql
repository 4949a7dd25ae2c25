-- Zep legacy: the tables, columns and indexes Zep v0.27.2 (the Go "Zep Open Source" release)
-- creates on a fresh database, for the demo and the tests. Names, types, defaults, constraints
-- and index definitions follow getzep/zep at tag v0.27.2 (commit 12a69d7177e2052c68b83c26a9316fce4ac91dfb);
-- Zep writes no DDL text for these tables: bun v1.1.16 renders it from the models
-- (CreateTable().IfNotExists().WithForeignKeys(), pkg/store/postgres/schema.go L424-478).
-- Deviations, on purpose: IF NOT EXISTS and CONCURRENTLY are left out (a fresh database; the
-- catalog ends up the same), and embeddings use Zep's default width, 1536
-- (defaultEmbeddingDims, schema.go L30; docker-compose.yaml L50-57).

-- schema.go L400-421: Zep creates this extension and no other (gen_random_uuid() is core).
CREATE EXTENSION IF NOT EXISTS vector;

-- DocumentCollectionSchema (schema.go L158-162) embedding models.DocumentCollection
-- (pkg/models/document.go L14-37): no deleted_at; collections are hard-deleted.
CREATE TABLE document_collection (
    uuid                     uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at               timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at               timestamptz DEFAULT current_timestamp,
    name                     varchar     NOT NULL,
    description              varchar     NOT NULL,
    metadata                 jsonb,
    table_name               varchar     NOT NULL,
    embedding_model_name     varchar     NOT NULL,
    embedding_dimensions     bigint      NOT NULL,
    is_auto_embedded         boolean     NOT NULL,
    distance_function        varchar     NOT NULL,
    is_normalized            boolean     NOT NULL,
    is_indexed               boolean     NOT NULL,
    index_type               varchar     NOT NULL,
    list_count               bigint      NOT NULL,
    probe_count              bigint      NOT NULL,
    document_count           bigint,
    document_embedded_count  bigint,
    PRIMARY KEY (uuid),
    UNIQUE (name)
);
CREATE INDEX document_collection_name_idx ON document_collection (name);

-- UserSchema (schema.go L181-194). Users are hard-deleted (userstore.go L192-232).
CREATE TABLE users (
    uuid        uuid        NOT NULL DEFAULT gen_random_uuid(),
    id          bigserial,
    created_at  timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at  timestamptz DEFAULT current_timestamp,
    deleted_at  timestamptz,
    user_id     varchar     NOT NULL,
    email       varchar,
    first_name  varchar,
    last_name   varchar,
    metadata    jsonb,
    PRIMARY KEY (uuid),
    UNIQUE (user_id)
);
CREATE INDEX user_user_id_idx ON users (user_id);
CREATE INDEX user_email_idx ON users (email);

-- SessionSchema (schema.go L34-47): the session table is singular; created_at is its age,
-- deleted_at its soft delete (bun's soft_delete tag, L42).
CREATE TABLE session (
    uuid        uuid        NOT NULL DEFAULT gen_random_uuid(),
    id          bigserial,
    session_id  varchar     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at  timestamptz NOT NULL DEFAULT current_timestamp,
    deleted_at  timestamptz,
    metadata    jsonb,
    user_id     varchar,
    PRIMARY KEY (uuid),
    UNIQUE (session_id),
    FOREIGN KEY (user_id) REFERENCES users (user_id) ON UPDATE NO ACTION ON DELETE CASCADE
);
CREATE INDEX session_session_id_idx ON session (session_id);
CREATE INDEX session_user_id_idx ON session (user_id);

-- MessageStoreSchema (schema.go L58-73); indexes memstore_<column>_idx.
CREATE TABLE message (
    uuid         uuid        NOT NULL DEFAULT gen_random_uuid(),
    id           bigserial,
    created_at   timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at   timestamptz DEFAULT current_timestamp,
    deleted_at   timestamptz,
    session_id   varchar     NOT NULL,
    role         varchar     NOT NULL,
    content      varchar     NOT NULL,
    token_count  bigint      NOT NULL,
    metadata     jsonb,
    PRIMARY KEY (uuid),
    FOREIGN KEY (session_id) REFERENCES session (session_id) ON UPDATE NO ACTION ON DELETE CASCADE
);
CREATE INDEX memstore_session_id_idx ON message (session_id);
CREATE INDEX memstore_id_idx ON message (id);

-- SummaryStoreSchema (schema.go L109-123).
CREATE TABLE summary (
    uuid                uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at          timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at          timestamptz DEFAULT current_timestamp,
    deleted_at          timestamptz,
    session_id          varchar     NOT NULL,
    content             varchar,
    metadata            jsonb,
    token_count         bigint      NOT NULL,
    summary_point_uuid  uuid        NOT NULL,
    PRIMARY KEY (uuid),
    UNIQUE (summary_point_uuid),
    FOREIGN KEY (session_id) REFERENCES session (session_id) ON UPDATE NO ACTION ON DELETE CASCADE,
    FOREIGN KEY (summary_point_uuid) REFERENCES message (uuid) ON UPDATE NO ACTION ON DELETE CASCADE
);
CREATE INDEX sumstore_session_id_idx ON summary (session_id);

-- SummaryVectorStoreSchema (schema.go L134-147), vector(1536) (L143).
CREATE TABLE summary_embedding (
    uuid          uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at    timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at    timestamptz DEFAULT current_timestamp,
    deleted_at    timestamptz,
    session_id    varchar     NOT NULL,
    summary_uuid  uuid        NOT NULL,
    embedding     vector(1536),
    is_embedded   boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (uuid),
    UNIQUE (summary_uuid),
    FOREIGN KEY (summary_uuid) REFERENCES summary (uuid) ON UPDATE NO ACTION ON DELETE CASCADE,
    FOREIGN KEY (session_id) REFERENCES session (session_id) ON UPDATE NO ACTION ON DELETE CASCADE
);
CREATE INDEX sumvecstore_session_id_idx ON summary_embedding (session_id);

-- MessageVectorStoreSchema (schema.go L85-98), vector(1536) (L94).
CREATE TABLE message_embedding (
    uuid          uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at    timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at    timestamptz DEFAULT current_timestamp,
    deleted_at    timestamptz,
    session_id    varchar     NOT NULL,
    message_uuid  uuid        NOT NULL,
    embedding     vector(1536),
    is_embedded   boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (uuid),
    UNIQUE (message_uuid),
    FOREIGN KEY (session_id) REFERENCES session (session_id) ON UPDATE NO ACTION ON DELETE CASCADE,
    FOREIGN KEY (message_uuid) REFERENCES message (uuid) ON UPDATE NO ACTION ON DELETE CASCADE
);
CREATE INDEX mem_vec_store_session_id_idx ON message_embedding (session_id);

-- createHNSWIndex (schema.go L481-508), run for both embedding tables when pgvector >= 0.5.0:
-- CREATE INDEX CONCURRENTLY IF NOT EXISTS <table>_<column>_hnsw_idx ... USING hnsw
-- (<column> vector_cosine_ops) WITH (M = 16, ef_construction = 64).
CREATE INDEX message_embedding_embedding_hnsw_idx ON message_embedding
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
CREATE INDEX summary_embedding_embedding_hnsw_idx ON summary_embedding
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);

-- One table per document collection, docstore_<name>_<dims> (documents.go L544-570), with the
-- columns of models.DocumentBase (document.go L70-79) and embedding vector(<dims>)
-- (createDocumentTable, schema.go L356-397; its document_id index name has no underscore, L381).
-- "supportkb" was created on pgvector >= 0.5.0: Zep gave it its HNSW index (L388-394).
CREATE TABLE docstore_supportkb_1536 (
    uuid         uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at   timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at   timestamptz DEFAULT current_timestamp,
    deleted_at   timestamptz,
    document_id  varchar,
    content      varchar,
    metadata     jsonb,
    is_embedded  boolean,
    embedding    vector(1536),
    PRIMARY KEY (uuid),
    UNIQUE (document_id)
);
CREATE INDEX docstore_supportkb_1536document_id_idx ON docstore_supportkb_1536 (document_id);
CREATE INDEX docstore_supportkb_1536_embedding_hnsw_idx ON docstore_supportkb_1536
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
-- "handbook" was created before the server had pgvector 0.5.0 (index_type 'ivfflat',
-- documents.go L52-62): no HNSW index; its IVFFlat index is made in problems.sql.
CREATE TABLE docstore_handbook_1536 (
    uuid         uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at   timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at   timestamptz DEFAULT current_timestamp,
    deleted_at   timestamptz,
    document_id  varchar,
    content      varchar,
    metadata     jsonb,
    is_embedded  boolean,
    embedding    vector(1536),
    PRIMARY KEY (uuid),
    UNIQUE (document_id)
);
CREATE INDEX docstore_handbook_1536document_id_idx ON docstore_handbook_1536 (document_id);

-- bun v1.1.16's migrator tables (migrate/migrator.go; migrations.Migrate, schema.go L424-478).
CREATE TABLE bun_migrations (
    id           bigserial   NOT NULL,
    name         varchar,
    group_id     bigint,
    migrated_at  timestamptz NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (id)
);
CREATE TABLE bun_migration_locks (
    id          bigserial NOT NULL,
    table_name  varchar,
    PRIMARY KEY (id),
    UNIQUE (table_name)
);

-- The task queue: watermill-sql v2.0.0 (pkg/tasks/sql_queue.go) creates one message table and
-- one offsets table per topic (pkg/models/tasks.go L13-20), columns as its PostgreSQL schema
-- adapter (schema_adapter_postgresql.go L27-41) and offsets adapter define them.
DO $$
DECLARE
    topic text;
BEGIN
    FOREACH topic IN ARRAY ARRAY['message_summarizer', 'message_embedder', 'message_ner',
                                 'message_intent', 'message_token_count', 'document_embedder',
                                 'message_summary_embedder', 'message_summary_ner'] LOOP
        EXECUTE format(
            'CREATE TABLE %I ("offset" serial, uuid varchar(36) NOT NULL, '
            'created_at timestamp NOT NULL DEFAULT current_timestamp, payload json DEFAULT NULL, '
            'metadata json DEFAULT NULL, transaction_id xid8 NOT NULL, '
            'PRIMARY KEY (transaction_id, "offset"))', 'watermill_' || topic);
        EXECUTE format(
            'CREATE TABLE %I (consumer_group varchar(255) NOT NULL, offset_acked bigint, '
            'last_processed_transaction_id xid8 NOT NULL, PRIMARY KEY (consumer_group))',
            'watermill_offsets_' || topic);
    END LOOP;
END
$$;
