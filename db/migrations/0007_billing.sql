-- Medium tier: billing and insurance, and the durable queue of work for external
-- services (payments processor, insurance verification). A job is written (with
-- synchronous commit: it survives the loss of a region) before the service is called;
-- it is processed exactly once: the job's key is the idempotency key sent to the
-- service, and its completion is recorded once.

CREATE TABLE invoice (
  id            bigserial PRIMARY KEY,
  patient_id    bigint NOT NULL REFERENCES patient (id),
  encounter_id  bigint REFERENCES encounter (id),
  description   text NOT NULL,
  amount_cents  bigint NOT NULL CHECK (amount_cents > 0),
  paid_cents    bigint NOT NULL DEFAULT 0 CHECK (paid_cents >= 0),
  status        text NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'balanced', 'cancelled')),
  issued_at     timestamptz NOT NULL DEFAULT now(),
  due_at        timestamptz NOT NULL DEFAULT now() + interval '30 days',
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CHECK (paid_cents <= amount_cents)
);
CREATE INDEX invoice_patient_idx ON invoice (patient_id, issued_at DESC);

CREATE TABLE coverage (
  id          bigserial PRIMARY KEY,
  patient_id  bigint NOT NULL REFERENCES patient (id),
  payer       text NOT NULL,
  plan        text NOT NULL,
  member_id   text NOT NULL,
  status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
  period_start date NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (patient_id, payer, member_id)
);

CREATE TABLE job (
  id               bigserial PRIMARY KEY,
  kind             text NOT NULL CHECK (kind IN ('payment', 'eligibility')),
  patient_id       bigint NOT NULL REFERENCES patient (id),
  account_id       bigint NOT NULL,
  idempotency_key  text NOT NULL,
  request          jsonb NOT NULL,
  status           text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'processing', 'succeeded', 'failed')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  locked_by        text,
  locked_until     timestamptz,
  last_error       text,
  result           jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz,
  UNIQUE (account_id, kind, idempotency_key)
);
CREATE INDEX job_due_idx ON job (next_attempt_at) WHERE status IN ('queued', 'processing');
CREATE INDEX job_patient_idx ON job (patient_id, created_at DESC);
ALTER SEQUENCE job_id_seq RESTART WITH 1000000000000;

-- Demo billing for a seeded population: an invoice for about a third of the finished
-- encounters (deterministic by id) and one coverage per patient.
CREATE FUNCTION continuum_seed_billing() RETURNS void
LANGUAGE sql AS $$
  INSERT INTO invoice (patient_id, encounter_id, description, amount_cents, issued_at, due_at)
  SELECT e.patient_id, e.id, e.type_display || ' on ' || to_char(e.period_start, 'YYYY-MM-DD'),
         CASE e.class_code WHEN 'EMER' THEN 45000 WHEN 'IMP' THEN 250000 WHEN 'VR' THEN 4000
                           WHEN 'HH' THEN 9000 ELSE 12500 END + (e.id % 7) * 500,
         e.period_start + interval '3 days', e.period_start + interval '33 days'
    FROM encounter e
   WHERE e.status = 'finished' AND e.id % 3 = 0;
  INSERT INTO coverage (patient_id, payer, plan, member_id, period_start)
  SELECT p.id,
         (ARRAY['Blue Shield', 'Aetna', 'UnitedHealthcare', 'Cigna', 'Medicare'])[1 + p.id % 5],
         (ARRAY['PPO', 'HMO', 'EPO', 'Part B'])[1 + p.id % 4],
         CASE WHEN p.id % 17 = 0 THEN 'INELIGIBLE' ELSE 'M' END || lpad(p.id::text, 9, '0'),
         date '2026-01-01'
    FROM patient p;
$$;
