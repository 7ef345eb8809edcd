-- continuum: expand
-- Reports of the operations programs (ops/continuum_ops): rollouts and chaos runs and
-- days. The controller writes the report to <state>/ as it always has and also sends it
-- to a portal node (POST /api/v1/ops/reports, ops token), which keeps it here so the
-- operations dashboard can show rollouts in progress, their decisions, and the chaos
-- practice without access to the controller's machine. A report is sent again as it
-- grows (a rollout after each judgement): the newest version replaces the row.
-- Operational data (synchronous_commit = local): nothing here is PHI.
CREATE TABLE ops_report (
  kind         text NOT NULL CHECK (kind IN ('rollout', 'chaos-run', 'chaos-day')),
  id           text NOT NULL CHECK (length(id) BETWEEN 1 AND 128),
  title        text NOT NULL,
  outcome      text NOT NULL,            -- e.g. done, rolled-back, running (canary), held, broken
  started_at   timestamptz NOT NULL,
  ended_at     timestamptz,              -- null while it runs
  text_report  text NOT NULL,            -- the readable report, as printed
  report       jsonb NOT NULL,           -- the whole JSON report
  updated_at   timestamptz NOT NULL DEFAULT now(),
  received_by  text NOT NULL,            -- node_id of the portal node that took it
  PRIMARY KEY (kind, id)
);
CREATE INDEX ops_report_started_at ON ops_report (started_at DESC);
GRANT SELECT, INSERT, UPDATE, DELETE ON ops_report TO continuum_portal;
