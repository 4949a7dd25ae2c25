-- Rows for the Zep CE v1 layout (schema.sql), in schema zep. The contents are made up; their
-- shape is Zep's: every row carries CE's one project, config.ProjectUUID()
-- 399e79e0-d0ec-4ea8-a0bf-fe556d19fb9f (src/lib/config/models_ce.go L37-39); a session delete
-- soft-deletes the session and its messages (src/store/sessionstore_common.go L208-266).
--
-- Planted:
--   * five live sessions (and their 30 messages) older than 90 days: the archival job is not
--     running (ZEP-PG-SESSION-RETENTION, ZEP-PG-MESSAGE-RETENTION);
--   * two sessions deleted 3 days ago, with their messages, still in Postgres: the purge CE runs
--     right after a session delete (src/store/db_utils_ce.go) did not remove them
--     (ZEP-PG-PURGE-SESSIONS, ZEP-PG-PURGE-MESSAGES). One of them is 150 days old: deleted, not
--     active, so the retention count leaves it out;
--   * one session deleted 30 minutes ago: not a finding.
SET search_path TO zep;

INSERT INTO users (uuid, created_at, user_id, email, first_name, last_name, project_uuid, metadata)
SELECT md5('ce-user' || g)::uuid, now() - make_interval(days => 300 - g * 20), 'user_' || g,
       'user' || g || '@example.com',
       (ARRAY['Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank'])[g],
       (ARRAY['Moreau', 'Okafor', 'Nguyen', 'Kowalski', 'Schmidt', 'Rossi'])[g],
       '399e79e0-d0ec-4ea8-a0bf-fe556d19fb9f', '{"plan": "pro"}'
FROM generate_series(1, 6) AS g;
-- The same person signed up twice with one address (CE does not index email as unique).
INSERT INTO users (user_id, email, first_name, project_uuid)
VALUES ('user_1_mobile', 'user1@example.com', 'Alice', '399e79e0-d0ec-4ea8-a0bf-fe556d19fb9f');

INSERT INTO sessions (uuid, session_id, created_at, updated_at, deleted_at, metadata, user_id,
                      project_uuid)
SELECT md5('ce-session-' || s.name)::uuid, s.name, now() - make_interval(days => s.age),
       coalesce(now() - s.deleted, now() - make_interval(days => s.age)), now() - s.deleted,
       jsonb_build_object('channel', (ARRAY['web', 'mobile'])[1 + s.n % 2]),
       'user_' || (1 + s.n % 6), '399e79e0-d0ec-4ea8-a0bf-fe556d19fb9f'
FROM (
    SELECT n, 'recent-' || n AS name, 1 + (n * 11) % 70 AS age, NULL::interval AS deleted
    FROM generate_series(1, 20) AS n
    UNION ALL
    SELECT 100 + n, 'archived-late-' || n, (ARRAY[91, 130, 180, 240, 365])[n], NULL
    FROM generate_series(1, 5) AS n
    UNION ALL
    SELECT 200 + n, 'deleted-unpurged-' || n, (ARRAY[150, 8])[n], interval '3 days'
    FROM generate_series(1, 2) AS n
    UNION ALL
    SELECT 300, 'deleted-just-now', 5, interval '30 minutes'
) AS s(n, name, age, deleted);

INSERT INTO messages (uuid, created_at, updated_at, deleted_at, session_id, project_uuid, role,
                      role_type, content, token_count)
SELECT md5('ce-message-' || s.session_id || '-' || m)::uuid,
       s.created_at + make_interval(mins => m), coalesce(s.deleted_at, s.created_at),
       s.deleted_at, s.session_id, s.project_uuid,
       CASE WHEN m % 2 = 1 THEN 'customer' ELSE 'SupportBot' END,
       CASE WHEN m % 2 = 1 THEN 'user' ELSE 'assistant' END::role_type_enum,
       CASE WHEN m % 2 = 1 THEN 'Question ' || m ELSE 'Answer ' || m END || ' in ' || s.session_id,
       8 + m * 3
FROM sessions AS s, generate_series(1, 6) AS m;

INSERT INTO bun_migrations (name, group_id, migrated_at)
VALUES ('000000000001', 1, now() - interval '300 days');

RESET search_path;
