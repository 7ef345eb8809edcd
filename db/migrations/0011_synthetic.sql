-- Synthetic monitoring (issue 9): the accounts and patients `continuum probe` uses are
-- rows like any other, tagged `synthetic` so that nothing patient-facing, billing or
-- reporting counts them. `continuum synthetic-accounts` creates them (per vantage: a
-- patient, its practitioner with the same id, a patient and a provider account, free
-- slots). Adding a column with a constant default is a catalog-only change (no table
-- rewrite), so this is online-safe; old binaries ignore the columns.
ALTER TABLE patient ADD COLUMN synthetic boolean NOT NULL DEFAULT false;
ALTER TABLE practitioner ADD COLUMN synthetic boolean NOT NULL DEFAULT false;
ALTER TABLE account ADD COLUMN synthetic boolean NOT NULL DEFAULT false;

-- Ids of synthetic patients and practitioners: far above seeded ids, EHR ids and the
-- run-time sequences (which start at 10^12).
CREATE SEQUENCE synthetic_id_seq START 900000000000000001;

-- Note retention for synthetic patients. Clinical notes are never deleted and a signed
-- note never changes (clinical_note_immutable, 0001). The prober's provider journey
-- writes and signs a note every run, so a synthetic patient's notes would pile up
-- forever. The one exception to the rule: a synthetic patient's notes beyond the newest
-- `p_keep` may be deleted, and only from inside continuum_prune_synthetic_notes (it sets
-- a transaction-local flag that the immutability trigger checks together with the
-- patient's synthetic tag). A real patient's note stays undeletable, flag or not.
CREATE OR REPLACE FUNCTION clinical_note_immutable_when_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('continuum.synthetic_retention', true) = 'on'
     AND EXISTS (SELECT 1 FROM patient p WHERE p.id = OLD.patient_id AND p.synthetic) THEN
    RETURN OLD;
  END IF;
  IF OLD.status = 'final' THEN
    RAISE EXCEPTION 'clinical note % is signed and cannot be changed', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'clinical notes are never deleted' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;

-- Deletes a synthetic patient's notes beyond the newest p_keep; returns how many. Does
-- nothing (0) for a patient that is not synthetic.
CREATE FUNCTION continuum_prune_synthetic_notes(p_patient bigint, p_keep integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM patient p WHERE p.id = p_patient AND p.synthetic) THEN
    RETURN 0;
  END IF;
  PERFORM set_config('continuum.synthetic_retention', 'on', true);
  DELETE FROM clinical_note WHERE id IN (
    SELECT id FROM clinical_note WHERE patient_id = p_patient
     ORDER BY created_at DESC, id DESC OFFSET greatest(p_keep, 0));
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM set_config('continuum.synthetic_retention', 'off', true);
  RETURN n;
END $$;

-- Retention runs with every new note of a synthetic patient, in the inserting
-- transaction (a bounded delete on clinical_note_patient_idx: at most one row per
-- insert once steady). For anyone else it costs one primary-key lookup.
CREATE FUNCTION clinical_note_synthetic_retention() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM patient p WHERE p.id = NEW.patient_id AND p.synthetic) THEN
    PERFORM continuum_prune_synthetic_notes(NEW.patient_id, 50);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER clinical_note_synthetic_retention AFTER INSERT ON clinical_note
  FOR EACH ROW EXECUTE FUNCTION clinical_note_synthetic_retention();
