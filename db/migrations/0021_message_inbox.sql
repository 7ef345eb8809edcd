-- migrate:no-transaction
-- continuum: expand
-- A provider's inbox across patients (GET /api/v1/messages/inbox): their conversations by
-- latest activity. Built CONCURRENTLY so that a live, large message table keeps taking
-- inserts while it builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS message_practitioner_sent_idx
  ON message (practitioner_id, sent_at DESC);
