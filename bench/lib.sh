# shellcheck shell=bash
# Shared by bench/run and bench/writes (sourced): a free port, and one `continuum serve` on
# it over $URL with auditing on or off. Needs ROOT, WORK and URL; sets PORT and SERVER_PID.
# BENCH_AUDIT_EXTRA: more [audit] settings for the server (e.g. "group_commit_wait_us = 100").
# BENCH_SERVER_EXTRA: more [server] settings (e.g. "critical_first_in_flight = 0").
# A free port below the kernel's ephemeral range (32768-60999), where outgoing connections
# (wrk's, the server's to PostgreSQL) take theirs.
free_port() {
  python3 -c '
import random, socket
for port in random.sample(range(20000, 32000), 200):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); print(port); break
    except OSError:
        pass
    finally:
        s.close()
else:
    raise SystemExit("bench: no free port in 20000-31999")'
}
start_server() {  # $1 = true|false (audit), $2 = binary, $3 = build name (new|old)
  [ -f "$WORK/ops.token" ] || python3 -c 'import secrets;print(secrets.token_hex(32))' >"$WORK/ops.token"
  cat >"$WORK/node-$3.toml" <<TOML
[server]
listen_port = $PORT
threads = 2
access_log = false
${BENCH_SERVER_EXTRA:-}
[node]
node_id = "bench-$3"
region = "local"
[database]
url = "$URL"
[auth]
key_file = "$WORK/cluster.key"
login_burst = 100000
login_rate_per_minute = 100000
[audit]
enabled = $1
dir = "$WORK/audit-$3"
${BENCH_AUDIT_EXTRA:-}
[ops]
token_file = "$WORK/ops.token"
TOML
  "$2" serve --config "$WORK/node-$3.toml" >"$WORK/serve-$3.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return 0; sleep 0.1
  done
  echo "bench: server did not become ready" >&2; cat "$WORK/serve-$3.log" >&2; exit 1
}
# One counter of the running server's /metrics (0 if absent).
metric() {
  curl -sf -H "Authorization: Bearer $(cat "$WORK/ops.token")" "http://127.0.0.1:$PORT/metrics" \
    | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""; }
# Segments to warm for S seconds of load between two checkpoints: at up to ~30 MB of WAL a
# second (audited reads: ~1.1 kB each), two a second; from 64 to 240.
wal_segments_for() {
  local n=$((2 * $1))
  echo $((n < 64 ? 64 : (n > 240 ? 240 : n)))
}
# The throwaway PostgreSQL's WAL as a database's that has been running: its segments
# recycled. A fresh instance creates every WAL segment it fills: 16 MB of zeros written
# and fsync'ed (wal_init_zero) about every second under audited load, on the disk the
# node's journal syncs on, where each such fsync held a journal fdatasync 13-31 ms (perf
# trace, bench/README.md, fifteenth round). A running database renames old segments into
# future ones at each checkpoint and later writes into those in place: it keeps the larger
# of min_wal_size and about twice a checkpoint cycle's recent WAL for that (capped by
# max_wal_size), so under a steady load it does not create segments. This writes and
# switches enough segments for $2 seconds of load between two checkpoints
# (wal_segments_for; BENCH_WAL_WARM_SEGMENTS=N: N of them), keeps them with min_wal_size,
# and checkpoints, so that the runs write into recycled segments.
# BENCH_WAL_WARM_SEGMENTS=0: as before, every segment new. $1 = a superuser URL.
warm_wal() {
  local n=${BENCH_WAL_WARM_SEGMENTS:-$(wal_segments_for "$2")}
  [[ $n =~ ^[0-9]+$ ]] && [ $((10#$n)) -le 240 ] \
    || { echo "bench: BENCH_WAL_WARM_SEGMENTS=$n: a number of segments from 0 to 240 (pg-tmp's max_wal_size is 4 GB)" >&2; exit 2; }
  n=$((10#$n))
  [ "$n" -gt 0 ] || return 0
  psql -qX -v ON_ERROR_STOP=1 "$1" -c "ALTER SYSTEM SET min_wal_size = '$((n * 16 + 256))MB'" \
    -c "SELECT pg_reload_conf()" >/dev/null
  psql -qX -v ON_ERROR_STOP=1 "$1" -c "DO \$\$ BEGIN FOR i IN 1..$n LOOP
      PERFORM pg_logical_emit_message(false, 'bench', 'warm');
      PERFORM pg_switch_wal();
    END LOOP; END \$\$" -c "CHECKPOINT" >/dev/null
  # recycled segments: files in pg_wal named after the current one
  local ahead
  ahead=$(psql -XAt -v ON_ERROR_STOP=1 "$1" -c "SELECT count(*) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}\$'
                               AND name > pg_walfile_name(pg_current_wal_lsn())")
  echo "bench: WAL warmed: $ahead recycled segments ahead of the current one" >&2
  # Fewer than asked for: the runs would create segments again and measure that instead.
  [ "$ahead" -ge "$n" ] || { echo "bench: FAILED: the WAL was not warmed ($ahead of $n segments recycled)" >&2; exit 1; }
}
