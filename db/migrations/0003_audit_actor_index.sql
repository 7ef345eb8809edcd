-- migrate:no-transaction
-- AuditEvent?agent=<username>: an auditor follows one user's trail (logins included).
-- Built CONCURRENTLY so that a live, large audit_event keeps taking inserts.
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_event_actor_idx ON audit_event (actor, recorded_at);
