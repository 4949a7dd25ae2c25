-- Zep Community Edition v1: the tables Zep v1.0.2 creates, for the demo and the tests, in the
-- schema its postgres.schema_name names (here "zep"; the zep.yaml it ships says public). Names,
-- types, defaults, constraints and indexes follow getzep/zep at tag v1.0.2 (commit
-- bff3c40a3fadf211320df7970affb3cd8cc4070f), src/store/migrations/000000000001_database_setup.up.sql,
-- its only migration. Zep itself never runs CREATE SCHEMA: the schema must exist beforehand.
CREATE SCHEMA zep;

-- src/lib/pg/db.go L72-95: Zep installs pgvector into public at every start, though CE keeps
-- no vector in Postgres (memory and facts live in Graphiti, src/lib/graphiti/service_ce.go).
CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;

-- migrate.go L24-27: SET search_path TO <schema_name>, then bun v1.1.17's migrator and the
-- migration create everything unqualified, so it all lands in that schema.
SET search_path TO zep;

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

CREATE TABLE users (
    uuid          uuid        NOT NULL DEFAULT gen_random_uuid(),
    id            bigserial,
    created_at    timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at    timestamptz DEFAULT current_timestamp,
    deleted_at    timestamptz,
    user_id       varchar     NOT NULL,
    email         varchar,
    first_name    varchar,
    last_name     varchar,
    project_uuid  uuid        NOT NULL,
    metadata      jsonb,
    PRIMARY KEY (uuid),
    UNIQUE (user_id)
);

CREATE TYPE role_type_enum AS ENUM ('norole', 'system', 'assistant', 'user', 'function', 'tool');

-- created_at is the session's age, deleted_at its soft delete (schema_common.go L50);
-- ended_at exists but CE never sets it.
CREATE TABLE sessions (
    uuid          uuid        NOT NULL DEFAULT gen_random_uuid(),
    id            bigserial,
    session_id    varchar     NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at    timestamptz NOT NULL DEFAULT current_timestamp,
    deleted_at    timestamptz,
    ended_at      timestamptz,
    metadata      jsonb,
    user_id       varchar,
    project_uuid  uuid        NOT NULL,
    PRIMARY KEY (uuid),
    UNIQUE (session_id),
    FOREIGN KEY (user_id) REFERENCES users (user_id) ON UPDATE NO ACTION ON DELETE CASCADE
);

CREATE TABLE messages (
    uuid          uuid        NOT NULL DEFAULT gen_random_uuid(),
    id            bigserial,
    created_at    timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at    timestamptz DEFAULT current_timestamp,
    deleted_at    timestamptz,
    session_id    varchar     NOT NULL,
    project_uuid  uuid        NOT NULL,
    role          varchar     NOT NULL,
    role_type     role_type_enum DEFAULT 'norole',
    content       varchar     NOT NULL,
    token_count   bigint      NOT NULL,
    metadata      jsonb,
    PRIMARY KEY (uuid),
    FOREIGN KEY (session_id) REFERENCES sessions (session_id) ON UPDATE NO ACTION ON DELETE CASCADE
);

CREATE INDEX user_user_id_idx ON users (user_id);
CREATE INDEX user_email_idx ON users (email);
CREATE INDEX memstore_session_id_idx ON messages (session_id);
CREATE INDEX memstore_id_idx ON messages (id);
CREATE INDEX memstore_session_id_project_uuid_deleted_at_idx ON messages (session_id, project_uuid, deleted_at);
CREATE INDEX session_user_id_idx ON sessions (user_id);
CREATE INDEX session_id_project_uuid_deleted_at_idx ON sessions (session_id, project_uuid, deleted_at);

RESET search_path;
