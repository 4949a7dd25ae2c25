-- Zep-shaped schema (after Zep's legacy open-source release) with a tenant column on
-- sessions, used by the demo, the tests and the benchmark. Creates tables and indexes only.

CREATE TABLE users (
    uuid        uuid PRIMARY KEY,
    id          bigserial UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    user_id     text NOT NULL UNIQUE,
    email       text,
    first_name  text,
    last_name   text,
    metadata    jsonb
);

CREATE TABLE sessions (
    uuid          uuid PRIMARY KEY,
    id            bigserial UNIQUE,
    session_id    text NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    ended_at      timestamptz,
    metadata      jsonb,
    user_id       text NOT NULL REFERENCES users (user_id),
    project_uuid  uuid,
    tenant_id     text NOT NULL
);
-- Retention counts filter on created_at: this index bounds them.
CREATE INDEX sessions_created_at_idx ON sessions (created_at);

-- Autovacuum disabled on the busiest table: a planted maintenance problem.
CREATE TABLE messages (
    uuid          uuid PRIMARY KEY,
    id            bigserial UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    session_id    text NOT NULL REFERENCES sessions (session_id),
    project_uuid  uuid,
    role          text NOT NULL,
    role_type     text,
    content       text NOT NULL,
    token_count   integer NOT NULL DEFAULT 0,
    metadata      jsonb
) WITH (autovacuum_enabled = false);
CREATE INDEX messages_session_id_idx ON messages (session_id);

-- Semantic memory: facts are valid from valid_from until valid_to (NULL: still valid).
CREATE TABLE facts (
    uuid        uuid PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    session_id  text REFERENCES sessions (session_id),
    fact        text NOT NULL,
    valid_from  timestamptz NOT NULL DEFAULT now(),
    valid_to    timestamptz
);
CREATE INDEX facts_valid_to_idx ON facts (valid_to);
