-- continuum: contract
-- The test release N+1 only (see 9001). Contract: from now on every new note must carry
-- its size. Release N's INSERTs do not set content_bytes, so this breaks release N's note
-- writing: `continuum migrate --contract` refuses it while a node built before 9002 (a
-- release N node, schema_version < 9002 in continuum_node) is live. NOT VALID: the rows
-- already there (signed notes are immutable, 0001) are not checked, only new and updated
-- rows, so no table scan and no backfill; N+1 reads old rows through its coalesce.
ALTER TABLE clinical_note ADD CONSTRAINT clinical_note_content_bytes_set
  CHECK (content_bytes IS NOT NULL) NOT VALID;
