-- Rescheduling an appointment that is already cancelled, with a new Idempotency-Key,
-- answered 503 (40001) instead of 409: the "is this a replay?" check booked the new slot
-- through continuum_book and then rolled everything back with a serialization failure,
-- which the portal retries and finally reports as unavailable. Now the replay is looked
-- up by key without booking anything: a replay answers "replayed", anything else on a
-- cancelled appointment "not-booked" (409). Same signature and outcomes: the previous
-- release calls it unchanged.
CREATE OR REPLACE FUNCTION continuum_reschedule(p_appointment bigint, p_patient bigint,
                                                p_slot bigint, p_key text)
RETURNS TABLE (appointment_id bigint, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
  old appointment%ROWTYPE;
  prior appointment%ROWTYPE;
  b record;
BEGIN
  SELECT * INTO old FROM appointment a
   WHERE a.id = p_appointment AND a.patient_id = p_patient FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT NULL::bigint, 'not-found'::text;
    RETURN;
  END IF;
  IF old.status <> 'booked' THEN
    -- A replay of a reschedule that already happened finds the old one cancelled and
    -- the new one booked under this key.
    IF p_key IS NOT NULL THEN
      SELECT * INTO prior FROM appointment a
       WHERE a.patient_id = p_patient AND a.idempotency_key = p_key;
      IF FOUND THEN
        RETURN QUERY SELECT prior.id,
          CASE WHEN prior.slot_id = p_slot AND prior.rescheduled_from = p_appointment
               THEN 'replayed' ELSE 'key-reused' END;
        RETURN;
      END IF;
    END IF;
    RETURN QUERY SELECT NULL::bigint, 'not-booked'::text;
    RETURN;
  END IF;
  SELECT * INTO b FROM continuum_book(p_slot, p_patient, old.description, p_key, p_appointment) x;
  IF b.outcome <> 'booked' THEN
    RETURN QUERY SELECT b.appointment_id, b.outcome;
    RETURN;
  END IF;
  PERFORM continuum_cancel(p_appointment, p_patient);
  RETURN QUERY SELECT b.appointment_id, 'rescheduled'::text;
END
$$;
