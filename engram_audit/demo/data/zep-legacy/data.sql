-- Rows for the Zep legacy layout (schema.sql). The contents are made up; their shape is Zep's:
-- how Zep deletes (soft delete: SessionDAO.Delete sets deleted_at on the session and on its
-- messages, summaries and embeddings, session.go L205-250; MessageDAO.Delete on one message and
-- its embedding, message.go L488+) and what it writes into metadata (the "system" key of its
-- extractors, pkg/tasks/message_ner.go L75). Vectors are deterministic, not real embeddings.
--
-- Planted:
--   * six live sessions (and their 36 messages) older than 90 days: the archival job is not
--     running (ZEP-PG-SESSION-RETENTION, ZEP-PG-MESSAGE-RETENTION);
--   * three sessions deleted 3 days ago, with their messages, summaries and embeddings, and one
--     message deleted 5 days ago, all still in Postgres: purge_every is not set, so Zep never
--     purges (ZEP-PG-PURGE-*). One of those sessions is 120 days old: deleted, not active, so
--     the retention count leaves it out;
--   * one session deleted 30 minutes ago: within one purge interval, not a finding.

INSERT INTO users (uuid, created_at, updated_at, user_id, email, first_name, last_name, metadata)
SELECT md5('user' || g)::uuid, now() - make_interval(days => 400 - g * 20),
       now() - make_interval(days => 200 - g * 10), 'user_' || g, 'user' || g || '@example.com',
       (ARRAY['Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank', 'Grace', 'Heidi'])[g],
       (ARRAY['Moreau', 'Okafor', 'Nguyen', 'Kowalski', 'Schmidt', 'Rossi', 'Tanaka', 'Silva'])[g],
       jsonb_build_object('plan', CASE WHEN g % 3 = 0 THEN 'pro' ELSE 'free' END)
FROM generate_series(1, 8) AS g;
-- The same person signed up twice with one address (Zep does not index email as unique).
INSERT INTO users (user_id, email, first_name, last_name)
VALUES ('user_1_mobile', 'user1@example.com', 'Alice', 'Moreau');

-- Sessions: (name, age in days, deleted how long ago, or NULL for a live session).
INSERT INTO session (uuid, session_id, created_at, updated_at, deleted_at, metadata, user_id)
SELECT md5('session-' || s.name)::uuid, s.name, now() - make_interval(days => s.age),
       coalesce(now() - s.deleted, now() - make_interval(days => s.age)), now() - s.deleted,
       jsonb_build_object('channel', (ARRAY['web', 'email', 'mobile', 'widget'])[1 + s.n % 4]),
       CASE WHEN s.n % 9 = 0 THEN NULL ELSE 'user_' || (1 + s.n % 8) END
FROM (
    SELECT n, 'recent-' || n AS name, 1 + (n * 7) % 60 AS age, NULL::interval AS deleted
    FROM generate_series(1, 24) AS n
    UNION ALL
    SELECT 100 + n, 'archived-late-' || n, (ARRAY[95, 120, 150, 200, 300, 400])[n], NULL
    FROM generate_series(1, 6) AS n
    UNION ALL
    SELECT 200 + n, 'deleted-unpurged-' || n, (ARRAY[120, 40, 12])[n], interval '3 days'
    FROM generate_series(1, 3) AS n
    UNION ALL
    SELECT 300, 'deleted-just-now', 20, interval '30 minutes'
) AS s(n, name, age, deleted);

-- Six messages per session, a minute apart, deleted with their session.
INSERT INTO message (uuid, created_at, updated_at, deleted_at, session_id, role, content,
                     token_count, metadata)
SELECT md5('message-' || s.session_id || '-' || m)::uuid,
       s.created_at + make_interval(mins => m), coalesce(s.deleted_at, s.created_at),
       s.deleted_at, s.session_id, CASE WHEN m % 2 = 1 THEN 'user' ELSE 'assistant' END,
       CASE WHEN m % 2 = 1 THEN 'Question ' || m || ' in ' || s.session_id
            ELSE 'Answer ' || m || ' in ' || s.session_id END,
       8 + m * 3,
       CASE WHEN m = 1 THEN '{"system": {"intent": "The subject is asking for help."}}'::jsonb END
FROM session AS s, generate_series(1, 6) AS m;
-- One message deleted on its own five days ago (MessageDAO.Delete), still there.
UPDATE message SET deleted_at = now() - interval '5 days', updated_at = now() - interval '5 days'
WHERE session_id = 'recent-3' AND content LIKE 'Question 3 %';

INSERT INTO message_embedding (uuid, created_at, updated_at, deleted_at, session_id,
                               message_uuid, embedding, is_embedded)
SELECT md5('message-embedding-' || m.uuid)::uuid, m.created_at, m.updated_at, m.deleted_at,
       m.session_id, m.uuid,
       ARRAY(SELECT sin(m.id * 0.37 + k) FROM generate_series(1, 1536) AS k)::vector(1536), true
FROM message AS m;

-- One summary per session, up to its last message (summary_point_uuid).
INSERT INTO summary (uuid, created_at, updated_at, deleted_at, session_id, content, metadata,
                     token_count, summary_point_uuid)
SELECT md5('summary-' || s.session_id)::uuid, s.created_at + interval '7 minutes',
       coalesce(s.deleted_at, s.created_at), s.deleted_at, s.session_id,
       'The user asked three questions in ' || s.session_id || ' and got three answers.', NULL,
       24, md5('message-' || s.session_id || '-6')::uuid
FROM session AS s;

INSERT INTO summary_embedding (uuid, created_at, updated_at, deleted_at, session_id,
                               summary_uuid, embedding, is_embedded)
SELECT md5('summary-embedding-' || su.uuid)::uuid, su.created_at, su.updated_at, su.deleted_at,
       su.session_id, su.uuid,
       ARRAY(SELECT cos(length(su.session_id) * 0.11 + k) FROM generate_series(1, 1536) AS k)::vector(1536),
       true
FROM summary AS su;

-- Document collections (documents.go L52-62: distance cosine; embedding_model_name is never set
-- by the create request, document_handlers.go L843-849).
INSERT INTO document_collection (name, description, table_name, embedding_model_name,
                                 embedding_dimensions, is_auto_embedded, distance_function,
                                 is_normalized, is_indexed, index_type, list_count, probe_count)
VALUES ('supportkb', 'Support articles', 'docstore_supportkb_1536', '', 1536, true, 'cosine',
        false, true, 'hnsw', 0, 0),
       ('handbook', 'Employee handbook', 'docstore_handbook_1536', '', 1536, true, 'cosine',
        false, true, 'ivfflat', 1, 1);

INSERT INTO docstore_supportkb_1536 (created_at, deleted_at, document_id, content, metadata,
                                     is_embedded, embedding)
SELECT now() - make_interval(days => 100 - g), CASE WHEN g = 1 THEN now() - interval '40 days' END,
       'kb-' || g, 'Support article ' || g, jsonb_build_object('lang', 'en'), true,
       ARRAY(SELECT sin(g * 1.3 + k) FROM generate_series(1, 1536) AS k)::vector(1536)
FROM generate_series(1, 40) AS g;
INSERT INTO docstore_handbook_1536 (created_at, document_id, content, is_embedded, embedding)
SELECT now() - make_interval(days => 500 - g), 'hb-' || g, 'Handbook section ' || g, true,
       ARRAY(SELECT cos(g * 0.7 + k) FROM generate_series(1, 1536) AS k)::vector(1536)
FROM generate_series(1, 30) AS g;

-- The bun migrations Zep v0.27.2 ships (pkg/store/postgres/migrations/, names are the numeric
-- prefixes: migrations.go L160-171).
INSERT INTO bun_migrations (name, group_id, migrated_at)
VALUES ('20230822100800', 1, now() - interval '400 days'),
       ('2023092800', 1, now() - interval '400 days'),
       ('2023110100', 1, now() - interval '400 days');
