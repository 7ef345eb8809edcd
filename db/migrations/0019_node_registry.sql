-- continuum: expand
-- Every `continuum serve` node registers here (src/db/README.md, "Schema changes two
-- releases can share"): one row per running process, its build (the version string of
-- continuum_build_info) and the highest migration that build knows. Its background loop
-- moves heartbeat_at every few seconds (the database's clock) and a clean shutdown
-- deletes the row; a row not seen for 30 s counts as gone. `continuum migrate --contract`
-- reads it and refuses a contract migration while a live node was built without it.
-- Operational data: nothing here is PHI.
CREATE TABLE continuum_node (
  instance_id     text PRIMARY KEY,   -- random per process start
  node_id         text NOT NULL,      -- [node] node_id
  region          text NOT NULL,
  version         text NOT NULL,      -- git describe at configure time
  schema_version  integer NOT NULL,   -- the highest migration the build knows
  started_at      timestamptz NOT NULL DEFAULT now(),
  heartbeat_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX continuum_node_heartbeat_idx ON continuum_node (heartbeat_at);
-- The portal role writes its own rows (0013's default privileges would grant this too;
-- said here so the table does not depend on who ran 0013).
GRANT SELECT, INSERT, UPDATE, DELETE ON continuum_node TO continuum_portal;
