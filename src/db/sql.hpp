// SQL fragments shared by named queries (string-literal macros, so a Query's text stays
// one compile-time constant).
#pragma once

// A timestamptz column as RFC 3339 UTC with milliseconds (2026-12-02T10:00:00.123Z);
// NULL stays NULL. The one format for new queries: "SELECT " CONTINUUM_SQL_UTC_MS("at").
#define CONTINUUM_SQL_UTC_MS(col) \
  "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

// A parameter holding Unix microseconds (bigint, or NULL) as a timestamptz: exact, and
// independent of the session's TimeZone and of the text the client sent.
#define CONTINUUM_SQL_FROM_UNIX_US(param) \
  "('epoch'::timestamptz + " param "::bigint * interval '1 microsecond')"
