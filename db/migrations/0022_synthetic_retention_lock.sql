-- continuum: expand
-- Synthetic notes' retention (0011) made exact under concurrent inserts: two transactions
-- adding a note to the same synthetic patient at once each pruned without seeing the
-- other's uncommitted note, so 51 could stay (found with the prober adding notes while a
-- test added more). The prune now takes a transaction-scoped advisory lock on the patient
-- first: the second waits for the first to commit, and its DELETE (a new snapshot under
-- READ COMMITTED) sees both notes. Real patients never reach it.
CREATE OR REPLACE FUNCTION continuum_prune_synthetic_notes(p_patient bigint, p_keep integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM patient p WHERE p.id = p_patient AND p.synthetic) THEN
    RETURN 0;
  END IF;
  -- a key of its own per patient (a hash: ids are bigint; a collision only makes two
  -- patients' prunes take turns)
  PERFORM pg_advisory_xact_lock(hashtextextended('continuum.synthetic_notes:' || p_patient, 0));
  PERFORM set_config('continuum.synthetic_retention', 'on', true);
  DELETE FROM clinical_note WHERE id IN (
    SELECT id FROM clinical_note WHERE patient_id = p_patient
     ORDER BY created_at DESC, id DESC OFFSET greatest(p_keep, 0));
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM set_config('continuum.synthetic_retention', 'off', true);
  RETURN n;
END $$;
