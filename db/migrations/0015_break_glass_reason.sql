-- Break-the-glass reasons (issue 10, item 4). The reason a provider states to open a
-- chart without a care relationship is free text and may name the patient's condition:
-- it is PHI, so it is kept here, with the clinical data (synchronous commit, the
-- database's access controls), not in audit_event.detail, which is documented as never
-- PHI. The audit record of the access (purpose ETREAT) carries the same request_id;
-- /api/v1/break-glass joins the two for auditors. New table only: online and backward
-- compatible (a previous release simply does not write it).
CREATE TABLE IF NOT EXISTS break_glass_reason (
  request_id       text PRIMARY KEY,
  practitioner_id  bigint NOT NULL,
  patient_id       bigint NOT NULL,
  reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
  recorded_at      timestamptz NOT NULL DEFAULT now()
);
