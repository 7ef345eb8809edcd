-- Sessions and second factor (issue 10, items 6 and 7). Expand only: the previous
-- release keeps working against this schema.

-- A revocation cursor that is monotonic at COMMIT. revoked_at = now() is the start of
-- the revoking transaction, so a poll by time misses a logout that commits later than
-- the poll's overlap (a failover can hold a commit for the whole critical deadline).
-- Nodes poll by transaction id instead: every revocation carries the id of the
-- transaction that made it, and a poll asks for ids >= the oldest transaction still
-- running at the previous poll (pg_snapshot_xmin), which no later commit can undercut.
-- The trigger stamps every revocation, whichever release wrote it.
ALTER TABLE session ADD COLUMN revoked_xid xid8;
CREATE INDEX session_revoked_xid_idx ON session (revoked_xid) WHERE revoked_xid IS NOT NULL;

CREATE FUNCTION session_stamp_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.revoked_at IS NOT NULL AND NEW.revoked_xid IS NULL THEN
    NEW.revoked_xid := pg_current_xact_id();
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER session_stamp_revocation BEFORE INSERT OR UPDATE OF revoked_at ON session
  FOR EACH ROW EXECUTE FUNCTION session_stamp_revocation();

-- TOTP: the last time step accepted (a code is good once: RFC 6238 section 5.2), and
-- an enrolment in progress (a secret shown to the user, enforced only once a code from
-- it has been confirmed).
ALTER TABLE account ADD COLUMN totp_last_step bigint;
ALTER TABLE account ADD COLUMN totp_pending_secret text;
ALTER TABLE account ADD COLUMN totp_pending_until timestamptz;
