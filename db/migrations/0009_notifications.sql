-- Notifications (email over SMTP, SMS over HTTP): an outbox. A notification is written
-- first (clinical class: synchronous commit, like the appointment it is about) and
-- delivered by every node's notification worker (SKIP LOCKED), by the patient's
-- preferred channel, else the other one; while both are down it stays queued and is
-- retried with backoff. dedupe_key makes "one reminder per appointment" a constraint.
-- Texts are PHI-light: a time and a place, never a diagnosis.
CREATE TABLE notification (
  id                  bigserial PRIMARY KEY,
  patient_id          bigint NOT NULL REFERENCES patient (id),
  kind                text NOT NULL CHECK (kind IN ('appointment-booked', 'appointment-reminder')),
  appointment_id      bigint REFERENCES appointment (id),
  channel_preference  text NOT NULL CHECK (channel_preference IN ('email', 'sms')),
  to_email            text,
  to_phone            text,
  subject             text NOT NULL,
  body                text NOT NULL,
  -- cancelled: a reminder whose appointment was cancelled before it could be sent
  status              text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'sent', 'failed', 'cancelled')),
  channel_used        text CHECK (channel_used IN ('email', 'sms')),
  attempts            integer NOT NULL DEFAULT 0,
  sms_attempted       boolean NOT NULL DEFAULT false,  -- its idempotency key was sent once
  next_attempt_at     timestamptz NOT NULL DEFAULT now(),
  locked_by           text,
  locked_until        timestamptz,
  last_error          text,
  dedupe_key          text NOT NULL UNIQUE,
  created_at          timestamptz NOT NULL DEFAULT now(),
  sent_at             timestamptz
);
CREATE INDEX notification_due_idx ON notification (next_attempt_at) WHERE status = 'queued';
CREATE INDEX notification_patient_idx ON notification (patient_id, created_at DESC);
ALTER SEQUENCE notification_id_seq RESTART WITH 1000000000000;
-- The worker's sweeps: booked appointments starting within 24 h (their slots are busy),
-- and recent bookings.
CREATE INDEX slot_busy_start_idx ON slot (start_at) WHERE status = 'busy';
CREATE INDEX appointment_created_idx ON appointment (created_at);
