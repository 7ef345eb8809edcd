-- migrate:no-transaction
-- AuditEvent?agent=: as 0025, for the actor.
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_event_actor_gin ON audit_event USING gin (actor);
