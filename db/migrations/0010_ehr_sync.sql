-- EHR integration: clinical data of each facility is synchronised in from the EHR's
-- FHIR endpoint, incrementally by _lastUpdated. Per resource type, the high-water mark
-- (the newest meta.lastUpdated applied) advances in the same transaction as the page
-- of rows it covers, so a crash never skips data and a replayed page changes nothing.
-- Sync bookkeeping is operational data; the rows it upserts are clinical.
CREATE TABLE ehr_sync_state (
  resource_type      text PRIMARY KEY,
  high_water         timestamptz,
  last_success_at    timestamptz,
  last_attempt_at    timestamptz,
  last_error         text,
  resources_applied  bigint NOT NULL DEFAULT 0
);

-- The EHR's meta.lastUpdated of the version a row holds (NULL: never synchronised).
-- An incoming version replaces a row only when it is newer.
ALTER TABLE patient ADD COLUMN source_updated_at timestamptz;
ALTER TABLE condition ADD COLUMN source_updated_at timestamptz;
ALTER TABLE medication ADD COLUMN source_updated_at timestamptz;
ALTER TABLE allergy ADD COLUMN source_updated_at timestamptz;
ALTER TABLE encounter ADD COLUMN source_updated_at timestamptz;

-- One node at a time applies EHR pages: every page's transaction starts with this,
-- which fails at once (and aborts the page) while another node's page is in flight.
CREATE FUNCTION ehr_sync_lock() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF NOT pg_try_advisory_xact_lock(7406151) THEN
    RAISE EXCEPTION 'EHR sync is running on another node' USING ERRCODE = '55P03';
  END IF;
  RETURN true;
END $$;
