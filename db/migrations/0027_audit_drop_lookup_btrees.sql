-- continuum: expand
-- The btrees that 0025 and 0026 replace (0002's patient index, 0003's actor index) go,
-- once both GIN indexes are valid. Expand: no release's statement names an index, and the
-- release before this one runs its AuditEvent look-ups on the GIN indexes as well.
-- DROP INDEX takes a moment's ACCESS EXCLUSIVE lock on audit_event (no scan); the runner's
-- lock_timeout bounds the wait behind a long AuditEvent read or a shipper's COPY.
DO $$
DECLARE
  missing text;
BEGIN
  SELECT string_agg(name, ', ') INTO missing
  FROM unnest(ARRAY['audit_event_patient_gin', 'audit_event_actor_gin']) AS name
  WHERE NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indexrelid = to_regclass(name)
                    AND i.indisvalid);
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'audit_event: % missing or not valid (a concurrent build failed or was '
      'cancelled); rebuild it (REINDEX INDEX CONCURRENTLY, or the CREATE INDEX of 0025/0026 '
      'if it is missing), then migrate again', missing;
  END IF;
END $$;
DROP INDEX IF EXISTS audit_event_patient_idx;
DROP INDEX IF EXISTS audit_event_actor_idx;
