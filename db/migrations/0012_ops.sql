-- Operations data (non-critical: written with synchronous_commit = local, see
-- db::DataClass): the alerts Alertmanager delivered to the portal's webhook, and the
-- synthetic journey runs the prober reports. Nothing here is PHI.

-- One row per alert and state change: a firing and its resolution are two rows; a
-- repeated notification of the same state (Alertmanager's repeat_interval, a second
-- Alertmanager, a retried delivery) is the same row, and keeps the first received_at.
CREATE TABLE ops_alert (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  fingerprint  text NOT NULL,
  alertname    text NOT NULL,
  severity     text NOT NULL DEFAULT '',
  status       text NOT NULL CHECK (status IN ('firing', 'resolved')),
  labels       jsonb NOT NULL,
  annotations  jsonb NOT NULL DEFAULT '{}',
  starts_at    timestamptz NOT NULL,
  ends_at      timestamptz,             -- resolved alerts only
  received_at  timestamptz NOT NULL DEFAULT now(),
  received_by  text NOT NULL,           -- node_id of the portal node that took the webhook
  UNIQUE (fingerprint, starts_at, status)
);
-- Listing by arrival (newest first) and the 30-day retention.
CREATE INDEX ops_alert_received_at ON ops_alert (received_at);

-- One row per completed journey run of the prober; the last 50 per (journey, vantage)
-- are kept. A retried report of the same run (same journey, vantage, started_at) is
-- stored once.
CREATE TABLE ops_journey_run (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  journey      text NOT NULL,
  vantage      text NOT NULL,
  target       text NOT NULL,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz NOT NULL,
  success      boolean NOT NULL,
  failed_step  text,
  error        text,
  steps        jsonb NOT NULL DEFAULT '[]',
  received_at  timestamptz NOT NULL DEFAULT now(),
  received_by  text NOT NULL,
  UNIQUE (journey, vantage, started_at)
);
