-- Rows for the Zep-shaped schema. Planted: sessions past 90 days for two tenants (acme,
-- globex), sessions of 45 days for initech (past a 30-day tenant override), expired facts.

INSERT INTO users (uuid, user_id, email, first_name, metadata)
SELECT md5('user' || g)::uuid, 'user-' || g, 'user' || g || '@example.com', 'User ' || g,
       jsonb_build_object('tier', CASE WHEN g % 2 = 0 THEN 'pro' ELSE 'free' END)
FROM generate_series(1, 6) AS g;

-- Recent sessions for every tenant (inside any retention window).
INSERT INTO sessions (uuid, session_id, created_at, user_id, tenant_id, metadata)
SELECT md5('session-recent' || g)::uuid, 'recent-' || g, now() - make_interval(days => g % 20),
       'user-' || (1 + g % 6), (ARRAY['acme', 'globex', 'initech'])[1 + g % 3],
       '{"channel": "chat"}'
FROM generate_series(1, 30) AS g;

-- Past the 90-day default: three for acme, two for globex.
INSERT INTO sessions (uuid, session_id, created_at, ended_at, user_id, tenant_id)
VALUES
    (md5('old-acme-1')::uuid, 'old-acme-1', now() - interval '120 days', now() - interval '119 days', 'user-1', 'acme'),
    (md5('old-acme-2')::uuid, 'old-acme-2', now() - interval '150 days', now() - interval '149 days', 'user-2', 'acme'),
    (md5('old-acme-3')::uuid, 'old-acme-3', now() - interval '400 days', NULL, 'user-3', 'acme'),
    (md5('old-globex-1')::uuid, 'old-globex-1', now() - interval '200 days', now() - interval '199 days', 'user-4', 'globex'),
    (md5('old-globex-2')::uuid, 'old-globex-2', now() - interval '95 days', NULL, 'user-5', 'globex');

-- 45 days old: fine under 90 days, past a 30-day override for initech.
INSERT INTO sessions (uuid, session_id, created_at, user_id, tenant_id)
VALUES (md5('mid-initech-1')::uuid, 'mid-initech-1', now() - interval '45 days', 'user-6', 'initech');

INSERT INTO messages (uuid, created_at, session_id, role, role_type, content, token_count)
SELECT md5('message' || g)::uuid, s.created_at + make_interval(mins => g % 60), s.session_id,
       CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END,
       CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END,
       'message ' || g, 10 + g % 50
FROM generate_series(1, 360) AS g
JOIN LATERAL (
    SELECT session_id, created_at FROM sessions ORDER BY id OFFSET (g % 36) LIMIT 1
) AS s ON true;

-- Twenty facts still valid, five expired (valid_to in the past).
INSERT INTO facts (uuid, session_id, fact, valid_from, valid_to)
SELECT md5('fact' || g)::uuid, 'recent-' || (1 + g % 30), 'fact ' || g,
       now() - interval '30 days',
       CASE WHEN g <= 5 THEN now() - make_interval(days => g) WHEN g % 2 = 0 THEN now() + interval '1 year' END
FROM generate_series(1, 25) AS g;

-- Dead tuples for the vacuum statistics (autovacuum is off on messages).
DELETE FROM messages WHERE token_count < 15;
