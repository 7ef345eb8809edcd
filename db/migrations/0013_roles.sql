-- Two database roles (src/audit/README.md, "Database roles"):
--   the owner  : whoever runs `continuum migrate` (and seed, content load); owns every
--                table, so only it can ALTER them, disable triggers or change grants;
--   continuum_portal : what `continuum serve` connects as. Full DML on the portal's own
--                tables, but on audit_event only SELECT (the AuditEvent read routes) and
--                INSERT (the shipper): no UPDATE, DELETE, TRUNCATE, ALTER, no ownership,
--                so the append-only triggers cannot be switched off from a portal node.
-- The bootstrap (scripts/pg-tmp, ops/continuum_ops, the e2e harness) creates
-- continuum_portal with LOGIN and a password before migrating; if it is missing it is
-- created here without LOGIN (never a password-less login), which needs CREATEROLE.
-- Expand-only: an older release connecting as the owner keeps working.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'continuum_portal') THEN
    CREATE ROLE continuum_portal NOLOGIN;
  END IF;
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO continuum_portal',
                 current_database());
END $$;

GRANT USAGE ON SCHEMA public TO continuum_portal;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO continuum_portal;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO continuum_portal;
-- Tables created by later migrations (run by the owner) get the same rights; a later
-- append-only table must REVOKE like audit_event below.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO continuum_portal;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO continuum_portal;

-- (`continuum migrate` creates schema_migrations; a bare psql run of the files has none.)
DO $$
BEGIN
  IF to_regclass('schema_migrations') IS NOT NULL THEN
    REVOKE ALL ON schema_migrations FROM continuum_portal;
    GRANT SELECT ON schema_migrations TO continuum_portal;
  END IF;
END $$;
REVOKE ALL ON audit_event FROM continuum_portal;
GRANT SELECT, INSERT ON audit_event TO continuum_portal;
