-- High tier: secure messaging between a patient and their care team (FHIR
-- Communication). A message belongs to one patient's conversation with one
-- practitioner (a thread: its first message's id); it is sent by one side and read by
-- the other. Messages are clinical data (synchronous commit) and never change except
-- for the recipient's read time.

CREATE TABLE message (
  id               bigserial PRIMARY KEY,
  thread_id        bigint NOT NULL,
  patient_id       bigint NOT NULL REFERENCES patient (id),
  practitioner_id  bigint NOT NULL REFERENCES practitioner (id),
  from_patient     boolean NOT NULL,       -- sent by the patient (else by the practitioner)
  sender_account   bigint NOT NULL,
  subject          text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
  body             text NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
  in_response_to   bigint REFERENCES message (id),
  idempotency_key  text,
  sent_at          timestamptz NOT NULL DEFAULT now(),
  read_at          timestamptz
);
CREATE INDEX message_patient_idx ON message (patient_id, sent_at DESC);
CREATE INDEX message_thread_idx ON message (thread_id, sent_at);
CREATE INDEX message_unread_patient_idx ON message (patient_id) WHERE read_at IS NULL AND NOT from_patient;
CREATE INDEX message_unread_practitioner_idx ON message (practitioner_id) WHERE read_at IS NULL AND from_patient;
CREATE UNIQUE INDEX message_idempotency ON message (sender_account, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
ALTER SEQUENCE message_id_seq RESTART WITH 1000000000000;

-- No message is ever rewritten or removed: only read_at may be set, once.
CREATE FUNCTION message_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'messages are never deleted' USING ERRCODE = '23514';
  END IF;
  IF (NEW.id, NEW.thread_id, NEW.patient_id, NEW.practitioner_id, NEW.from_patient,
      NEW.sender_account, NEW.subject, NEW.body, NEW.in_response_to, NEW.idempotency_key,
      NEW.sent_at)
     IS DISTINCT FROM
     (OLD.id, OLD.thread_id, OLD.patient_id, OLD.practitioner_id, OLD.from_patient,
      OLD.sender_account, OLD.subject, OLD.body, OLD.in_response_to, OLD.idempotency_key,
      OLD.sent_at)
     OR (OLD.read_at IS NOT NULL AND NEW.read_at IS DISTINCT FROM OLD.read_at) THEN
    RAISE EXCEPTION 'a sent message cannot be changed' USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER message_immutable BEFORE UPDATE OR DELETE ON message
  FOR EACH ROW EXECUTE FUNCTION message_guard();
