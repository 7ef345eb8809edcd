-- The HIPAA audit trail in PostgreSQL: an append-only copy of every node's journal.
-- Rows are keyed by (node_id, seq) so the shipper's retries are idempotent; the
-- database itself refuses UPDATE, DELETE and TRUNCATE.
CREATE TABLE audit_event (
  node_id          text NOT NULL,
  seq              bigint NOT NULL,
  recorded_at      timestamptz NOT NULL,
  region           text NOT NULL,
  request_id       text NOT NULL,
  actor            text NOT NULL,        -- username, or "anonymous"
  role             text NOT NULL,
  action           text NOT NULL,        -- login, logout, read, search, create, update, ...
  resource_type    text,
  resource_id      text,
  patient_id       text,
  client_address   text NOT NULL,
  purpose_of_use   text NOT NULL,        -- TREAT, ETREAT (break-the-glass), HOPERAT, ...
  outcome          text NOT NULL,        -- success, denied, failure, error
  detail           text,
  prev_hash        text NOT NULL,
  hash             text NOT NULL,
  record           text NOT NULL,        -- the journal line exactly as hashed
  shipped_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node_id, seq)
);
CREATE INDEX audit_event_patient_idx ON audit_event (patient_id, recorded_at);
CREATE INDEX audit_event_purpose_idx ON audit_event (purpose_of_use, recorded_at)
  WHERE purpose_of_use = 'ETREAT';

CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_event
  FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
  FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();
