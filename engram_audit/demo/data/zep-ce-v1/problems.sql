-- Planted beside the data: autovacuum switched off on messages during a bulk import and never
-- switched back on (ZEP-PG-AUTOVACUUM).
ALTER TABLE zep.messages SET (autovacuum_enabled = false);
