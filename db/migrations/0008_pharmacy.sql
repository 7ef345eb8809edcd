-- Pharmacy feed: refill requests go through the durable job queue like payments; the
-- last fill status the pharmacy reported per medication is kept, so that it can be shown
-- (with its age) while the pharmacy is down. Fill statuses are a cache of the
-- pharmacy's data: operational class (local commit).
ALTER TABLE job DROP CONSTRAINT job_kind_check;
ALTER TABLE job ADD CONSTRAINT job_kind_check CHECK (kind IN ('payment', 'eligibility', 'refill'));

CREATE TABLE medication_fill (
  medication_id  bigint PRIMARY KEY REFERENCES medication (id),
  status         text NOT NULL,
  detail         jsonb NOT NULL,
  checked_at     timestamptz NOT NULL DEFAULT now()
);
