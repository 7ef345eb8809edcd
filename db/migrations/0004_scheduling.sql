-- High tier: appointment scheduling (FHIR Slot and Appointment).
--
-- A slot is a practitioner's bookable half hour at their facility. Booking takes the
-- slot (free -> busy) and creates the appointment in one transaction; the partial
-- unique index makes a second booked appointment for one slot impossible even if two
-- requests race, so there is no double booking. Cancelling frees the slot again.

CREATE TABLE slot (
  id               bigserial PRIMARY KEY,
  practitioner_id  bigint NOT NULL REFERENCES practitioner (id),
  facility_id      bigint NOT NULL REFERENCES facility (id),
  start_at         timestamptz NOT NULL,
  end_at           timestamptz NOT NULL,
  status           text NOT NULL DEFAULT 'free' CHECK (status IN ('free', 'busy')),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CHECK (end_at > start_at),
  UNIQUE (practitioner_id, start_at)
);
CREATE INDEX slot_free_start_idx ON slot (start_at) WHERE status = 'free';

CREATE TABLE appointment (
  id               bigserial PRIMARY KEY,
  slot_id          bigint NOT NULL REFERENCES slot (id),
  patient_id       bigint NOT NULL REFERENCES patient (id),
  status           text NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'cancelled')),
  description      text,
  idempotency_key  text,
  rescheduled_from bigint REFERENCES appointment (id),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  cancelled_at     timestamptz
);
CREATE UNIQUE INDEX appointment_one_booking_per_slot ON appointment (slot_id) WHERE status = 'booked';
CREATE UNIQUE INDEX appointment_idempotency ON appointment (patient_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX appointment_patient_idx ON appointment (patient_id, created_at DESC);
ALTER SEQUENCE appointment_id_seq RESTART WITH 1000000000000;

-- Opens free slots for every practitioner: weekdays, 09:00-16:30 UTC every 30 minutes,
-- from tomorrow for `days` days. Idempotent (existing slots are kept as they are);
-- returns the number of slots added. `continuum seed` calls it; operators run it daily.
CREATE FUNCTION continuum_open_slots(days integer) RETURNS bigint
LANGUAGE sql AS $$
  WITH added AS (
    INSERT INTO slot (practitioner_id, facility_id, start_at, end_at)
    SELECT p.id, p.facility_id, (d + t) AT TIME ZONE 'UTC',
           (d + t + interval '30 minutes') AT TIME ZONE 'UTC'
      FROM practitioner p
     CROSS JOIN generate_series(1, days) AS n
     CROSS JOIN LATERAL (SELECT (current_date + n)::timestamp AS d) day
     CROSS JOIN LATERAL (SELECT interval '9 hours' + h * interval '30 minutes' AS t
                           FROM generate_series(0, 15) AS h) half_hour
     WHERE extract(isodow FROM d) < 6
    ON CONFLICT (practitioner_id, start_at) DO NOTHING
    RETURNING 1)
  SELECT count(*) FROM added
$$;

-- Books slot p_slot for patient p_patient, exactly once per idempotency key.
-- outcome: booked | replayed (this key booked this slot before) | key-reused (this key
-- booked another slot) | taken (not free, or in the past) | no-slot. A concurrent
-- request with the same key fails on appointment_idempotency (23505) and rolls back
-- its slot update with it; the caller then finds the replay.
CREATE FUNCTION continuum_book(p_slot bigint, p_patient bigint, p_description text,
                               p_key text, p_rescheduled_from bigint DEFAULT NULL)
RETURNS TABLE (appointment_id bigint, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
  prior appointment%ROWTYPE;
  new_id bigint;
BEGIN
  IF p_key IS NOT NULL THEN
    SELECT * INTO prior FROM appointment a WHERE a.patient_id = p_patient AND a.idempotency_key = p_key;
    IF FOUND THEN
      RETURN QUERY SELECT prior.id, CASE WHEN prior.slot_id = p_slot THEN 'replayed' ELSE 'key-reused' END;
      RETURN;
    END IF;
  END IF;
  UPDATE slot SET status = 'busy', updated_at = now()
   WHERE id = p_slot AND status = 'free' AND start_at > now();
  IF NOT FOUND THEN
    RETURN QUERY SELECT NULL::bigint,
      CASE WHEN EXISTS (SELECT 1 FROM slot WHERE id = p_slot) THEN 'taken' ELSE 'no-slot' END;
    RETURN;
  END IF;
  INSERT INTO appointment (slot_id, patient_id, description, idempotency_key, rescheduled_from)
  VALUES (p_slot, p_patient, p_description, p_key, p_rescheduled_from)
  RETURNING id INTO new_id;
  RETURN QUERY SELECT new_id, 'booked';
END
$$;

-- Cancels a booked appointment of p_patient and frees its slot. outcome: cancelled |
-- already-cancelled | not-found. Idempotent.
CREATE FUNCTION continuum_cancel(p_appointment bigint, p_patient bigint)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  freed bigint;
BEGIN
  UPDATE appointment SET status = 'cancelled', cancelled_at = now(), updated_at = now()
   WHERE id = p_appointment AND patient_id = p_patient AND status = 'booked'
  RETURNING slot_id INTO freed;
  IF FOUND THEN
    UPDATE slot SET status = 'free', updated_at = now() WHERE id = freed;
    RETURN 'cancelled';
  END IF;
  IF EXISTS (SELECT 1 FROM appointment WHERE id = p_appointment AND patient_id = p_patient) THEN
    RETURN 'already-cancelled';
  END IF;
  RETURN 'not-found';
END
$$;

-- Moves a booked appointment of p_patient to slot p_slot in one transaction: the new
-- appointment is booked (rescheduled_from = the old one), then the old one is
-- cancelled and its slot freed. outcome: rescheduled | replayed | not-found |
-- not-booked | taken | no-slot | key-reused.
CREATE FUNCTION continuum_reschedule(p_appointment bigint, p_patient bigint, p_slot bigint,
                                     p_key text)
RETURNS TABLE (appointment_id bigint, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
  old appointment%ROWTYPE;
  b record;
BEGIN
  SELECT * INTO old FROM appointment a
   WHERE a.id = p_appointment AND a.patient_id = p_patient FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT NULL::bigint, 'not-found'::text;
    RETURN;
  END IF;
  IF old.status <> 'booked' THEN
    -- A replay of a reschedule that already happened finds the old one cancelled.
    IF p_key IS NOT NULL THEN
      SELECT * INTO b FROM continuum_book(p_slot, p_patient, old.description, p_key, p_appointment) x;
      IF b.outcome = 'replayed' THEN
        RETURN QUERY SELECT b.appointment_id, 'replayed'::text;
        RETURN;
      END IF;
      RAISE EXCEPTION 'reschedule of a cancelled appointment reached booking' USING ERRCODE = '40001';
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
