-- Continuum core schema: facilities, people, care relationships, the clinical record,
-- accounts and sessions. Ids of seeded rows are deterministic bigints; FHIR ids are
-- their decimal form. Rows created at run time take ids from sequences that start
-- far above any seeded id.

CREATE TABLE facility (
  id          bigint PRIMARY KEY,
  name        text NOT NULL,
  city        text NOT NULL,
  state       text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE patient (
  id            bigint PRIMARY KEY,
  mrn           text NOT NULL UNIQUE,
  family        text NOT NULL,
  given         text NOT NULL,
  gender        text NOT NULL CHECK (gender IN ('male', 'female', 'other', 'unknown')),
  birth_date    date NOT NULL,
  phone         text,
  email         text,
  address_line  text,
  city          text,
  state         text,
  postal_code   text,
  facility_id   bigint NOT NULL REFERENCES facility (id),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patient_family_idx ON patient (lower(family) text_pattern_ops, lower(given));
CREATE INDEX patient_given_idx ON patient (lower(given) text_pattern_ops);
CREATE INDEX patient_birth_date_idx ON patient (birth_date);

CREATE TABLE practitioner (
  id           bigint PRIMARY KEY,
  npi          text NOT NULL UNIQUE,
  family       text NOT NULL,
  given        text NOT NULL,
  specialty    text NOT NULL,
  facility_id  bigint NOT NULL REFERENCES facility (id),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Which provider treats which patient at which facility.
CREATE TABLE care_relationship (
  practitioner_id  bigint NOT NULL REFERENCES practitioner (id),
  patient_id       bigint NOT NULL REFERENCES patient (id),
  facility_id      bigint NOT NULL REFERENCES facility (id),
  since            date NOT NULL,
  PRIMARY KEY (practitioner_id, patient_id)
);
CREATE INDEX care_relationship_patient_idx ON care_relationship (patient_id);

CREATE TABLE allergy (
  id               bigint PRIMARY KEY,
  patient_id       bigint NOT NULL REFERENCES patient (id),
  code             text NOT NULL,        -- SNOMED CT substance code
  display          text NOT NULL,
  category         text NOT NULL CHECK (category IN ('food', 'medication', 'environment', 'biologic')),
  criticality      text NOT NULL CHECK (criticality IN ('low', 'high', 'unable-to-assess')),
  clinical_status  text NOT NULL CHECK (clinical_status IN ('active', 'inactive', 'resolved')),
  reaction         text,
  recorded_date    date NOT NULL,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX allergy_patient_idx ON allergy (patient_id);

CREATE TABLE medication (
  id               bigint PRIMARY KEY,
  patient_id       bigint NOT NULL REFERENCES patient (id),
  rxnorm_code      text NOT NULL,
  display          text NOT NULL,
  dosage           text NOT NULL,
  status           text NOT NULL CHECK (status IN ('active', 'completed', 'stopped', 'on-hold')),
  effective_start  date NOT NULL,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX medication_patient_idx ON medication (patient_id);

CREATE TABLE condition (
  id               bigint PRIMARY KEY,
  patient_id       bigint NOT NULL REFERENCES patient (id),
  snomed_code      text NOT NULL,
  display          text NOT NULL,
  clinical_status  text NOT NULL CHECK (clinical_status IN ('active', 'recurrence', 'relapse', 'inactive', 'remission', 'resolved')),
  onset_date       date NOT NULL,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX condition_patient_idx ON condition (patient_id);

CREATE TABLE encounter (
  id               bigint PRIMARY KEY,
  patient_id       bigint NOT NULL REFERENCES patient (id),
  facility_id      bigint NOT NULL REFERENCES facility (id),
  practitioner_id  bigint NOT NULL REFERENCES practitioner (id),
  class_code       text NOT NULL CHECK (class_code IN ('AMB', 'EMER', 'IMP', 'VR', 'HH')),
  type_display     text NOT NULL,
  status           text NOT NULL CHECK (status IN ('planned', 'in-progress', 'finished', 'cancelled')),
  period_start     timestamptz NOT NULL,
  period_end       timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX encounter_patient_idx ON encounter (patient_id, period_start DESC);

-- A provider's clinical note (FHIR DocumentReference). preliminary -> final; a final
-- note is immutable (enforced below, in the database itself).
CREATE SEQUENCE clinical_note_id_seq START 1000000000000;
CREATE TABLE clinical_note (
  id               bigint PRIMARY KEY DEFAULT nextval('clinical_note_id_seq'),
  patient_id       bigint NOT NULL REFERENCES patient (id),
  author_id        bigint NOT NULL REFERENCES practitioner (id),
  status           text NOT NULL CHECK (status IN ('preliminary', 'final', 'entered-in-error')),
  title            text NOT NULL,
  content          text NOT NULL,
  content_type     text NOT NULL DEFAULT 'text/plain',
  idempotency_key  text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  signed_at        timestamptz,
  signed_by        bigint REFERENCES practitioner (id),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (author_id, idempotency_key)
);
ALTER SEQUENCE clinical_note_id_seq OWNED BY clinical_note.id;
CREATE INDEX clinical_note_patient_idx ON clinical_note (patient_id, created_at DESC);

CREATE FUNCTION clinical_note_immutable_when_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'final' THEN
    RAISE EXCEPTION 'clinical note % is signed and cannot be changed', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'clinical notes are never deleted' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER clinical_note_immutable BEFORE UPDATE OR DELETE ON clinical_note
  FOR EACH ROW EXECUTE FUNCTION clinical_note_immutable_when_final();

-- Login accounts. password_hash is a libsodium Argon2id string.
CREATE SEQUENCE account_id_seq START 1000000000000;
CREATE TABLE account (
  id               bigint PRIMARY KEY DEFAULT nextval('account_id_seq'),
  username         text NOT NULL UNIQUE,
  password_hash    text NOT NULL,
  role             text NOT NULL CHECK (role IN ('patient', 'provider', 'auditor')),
  patient_id       bigint REFERENCES patient (id),
  practitioner_id  bigint REFERENCES practitioner (id),
  totp_secret      text,
  failed_attempts  integer NOT NULL DEFAULT 0,
  locked_until     timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  CHECK ((role = 'patient') = (patient_id IS NOT NULL)),
  CHECK ((role = 'provider') = (practitioner_id IS NOT NULL))
);
ALTER SEQUENCE account_id_seq OWNED BY account.id;

-- Sessions. Tokens are validated without the database; this table carries revocation
-- and idle tracking, which every node polls.
CREATE TABLE session (
  id            text PRIMARY KEY,
  account_id    bigint NOT NULL REFERENCES account (id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  last_seen_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at    timestamptz
);
CREATE INDEX session_revoked_idx ON session (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX session_last_seen_idx ON session (last_seen_at);
