-- continuum: expand
-- The test release N+1 only (the continuum_next build; src/db/README.md, "Schema changes
-- two releases can share"): never applied by release builds. Release N+1 stores each
-- note's size in bytes and serves it as DocumentReference.content.attachment.size.
-- Expand: a nullable column without a default is a catalogue change (no rewrite, a
-- moment's ACCESS EXCLUSIVE lock); release N's INSERTs, which do not name it, still work
-- (it stays NULL), and N+1 reads coalesce(content_bytes, octet_length(content)), so the
-- notes N keeps writing read the same.
ALTER TABLE clinical_note ADD COLUMN content_bytes integer;
