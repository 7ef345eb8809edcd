-- continuum: expand
-- btree_gin (a contrib extension shipped with PostgreSQL, trusted: the database's owner,
-- who runs `continuum migrate`, may create it) gives GIN indexes on plain text columns,
-- for audit_event's patient and actor look-ups (0025-0027, bench/README.md "The audit
-- copy's look-up indexes as GIN").
CREATE EXTENSION IF NOT EXISTS btree_gin;
