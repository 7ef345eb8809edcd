-- Signed chain heads (src/audit/README.md, "Anchoring"): at a short interval every node
-- signs (Ed25519) the head of its audit chain, (node_id, seq, hash), and stores it here.
-- `continuum audit verify` checks each signature against the node's trusted public key
-- and that the chain still holds record `seq` with hash `hash`: a chain truncated at its
-- tail, rewritten, or a node whose rows and journal vanished, no longer matches a head.
-- kind = 'head' : the chain's durable head at signed_at;
-- kind = 'epoch': the node's journal started a new epoch at `seq` (its folder was lost
--                 or replaced); `hash` is that epoch's genesis prev_hash.
-- Append-only like audit_event: the portal role may only INSERT (and SELECT).
CREATE TABLE audit_head (
  node_id      text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('head', 'epoch')),
  seq          bigint NOT NULL CHECK (seq >= 1),
  hash         text NOT NULL,
  signed_at    timestamptz NOT NULL,   -- the node's clock, part of the signed message
  public_key   text NOT NULL,          -- hex Ed25519 public key that signed
  signature    text NOT NULL,          -- hex Ed25519 detached signature
  received_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node_id, kind, seq)
);

CREATE TRIGGER audit_head_no_update BEFORE UPDATE OR DELETE ON audit_head
  FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
  FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();

-- 0013's default privileges gave the portal full DML on this new table: take it back.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'continuum_portal') THEN
    REVOKE ALL ON audit_head FROM continuum_portal;
    GRANT SELECT, INSERT ON audit_head TO continuum_portal;
  END IF;
END $$;
