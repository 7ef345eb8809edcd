// Node configuration: read from a TOML file, validated strictly (an unknown key is an
// error that names the key), then overridden by command-line flags.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/secret.hpp"
#include "core/tier.hpp"

namespace continuum {

struct TierLimits {
  int pool_size = 4;       // connections in this tier's pool
  int queue_limit = 64;    // requests allowed to wait for a connection
  int deadline_ms = 2000;  // request deadline (pool wait + statements)
  int max_in_flight = 64;  // requests of this tier a node works on at once (bulkhead)
};

// [[topology.region]]: one region's PostgreSQL, for reads.
struct RegionDatabaseConfig {
  std::string name;
  Secret database_url;
};

// [dependencies.<name>]: an external service (payments, insurance, pharmacy, ehr, sms,
// smtp). Their calls carry PHI, so TLS is the rule: https://host:port (certificate and
// host name verified against ca_file, or the system's trust store), and smtp://host:port
// speaks STARTTLS (required, verified). Clear text only with allow_plaintext = true, set
// explicitly per dependency; an http:// URL without it is a configuration error.
struct DependencyConfig {
  std::string name;
  std::string url;      // https://host:port (smtp: smtp://host:port)
  std::string ca_file;  // PEM bundle of trusted CAs; empty: the system's trust store
  bool allow_plaintext = false;
  int timeout_ms = 2000;
  int check_interval_ms = 2000;
  int failure_threshold = 5;  // consecutive failures that open the breaker
  int open_ms = 5000;         // how long it stays open before a trial call
  int failure_rate_pct = 50;  // or: more than this share of the last 20 calls failed
};

struct Config {
  // [server]
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 8080;
  int threads = 2;
  std::size_t body_limit_bytes = 1 << 20;
  int header_timeout_ms = 10000;
  int idle_timeout_ms = 60000;
  int shutdown_grace_ms = 10000;
  // On SIGTERM the node first drains for drain_ms: /readyz answers 503 "draining" (the
  // edge's health checks take it out of rotation), requests are still served, each
  // answer closes its connection. Then it stops accepting and waits (at most
  // shutdown_grace_ms) for requests in flight. 0: stop accepting at once.
  int drain_ms = 0;
  // Critical first (resilience/critical_first.hpp): while a node works on at least
  // critical_first_threshold critical-tier requests at once and its CPU is saturated (its
  // event loop runs critical_first_lag_us or more late), each of the high, medium and low
  // tiers works on at most critical_first_in_flight requests at once; the rest wait their
  // turn, at most half of their time to the deadline. The two counts are per node, divided
  // among the threads (rounded up: at 8 threads a threshold of 8 is 1 per thread).
  // critical_first_in_flight = 0: off (the tiers share the CPU as they come);
  // critical_first_lag_us = 0: engage on the threshold alone.
  int critical_first_in_flight = 2;
  int critical_first_threshold = 8;
  int critical_first_lag_us = 500;
  bool access_log = true;
  std::vector<std::string> trusted_proxies;  // edge addresses whose X-Forwarded-For is believed
  // server.public_base_url: the address clients reach the portal at (the edge's public
  // URL, e.g. "https://portal.example"), an absolute http(s) URL without query or
  // fragment, stored without a trailing '/'. Location headers and FHIR bundle links
  // (self, next, fullUrl) are built on it, never on the request's Host or
  // X-Forwarded-Proto: those are the client's to choose, and a link built from them
  // points wherever an attacker (or a cache poisoned by one) wants. Empty: derived from
  // the listen address (PublicBaseUrl()).
  std::string public_base_url;
  // public_base_url, or http://<listen_address>:<listen_port> (a wildcard address
  // becomes 127.0.0.1, an IPv6 address gets brackets).
  std::string PublicBaseUrl() const;
  // [node]
  std::string region = "local";
  std::string node_id = "node-1";
  // [database]
  Secret database_url{"postgresql://postgres@127.0.0.1:5432/continuum"};
  std::array<TierLimits, 5> tiers{};
  // database.clinical_commit: "sync-standby" (a clinical commit is acknowledged only once a
  // synchronous standby holds it; a lone surviving database takes no clinical writes),
  // "local" (acknowledged when the primary has it: a single-database setup, or an
  // operator's explicit choice to accept single-copy writes), or "auto" (the default:
  // sync-standby when [topology] lists two or more databases, else local).
  std::string clinical_commit = "auto";
  // database.read_group_limit: read-only batches queued for a tier's connection that go to
  // the database in one round trip (each its own transaction), so that under saturation
  // the database answers many reads per wakeup (db::PoolOptions::group_limit). 1 = off.
  int read_group_limit = 16;
  bool RequireSyncStandby() const {
    return clinical_commit == "sync-standby" ||
           (clinical_commit == "auto" && topology_regions.size() >= 2);
  }
  // [topology] (optional): every region's PostgreSQL, this node's region first. Absent:
  // one database (database.url) serves reads and writes.
  std::vector<RegionDatabaseConfig> topology_regions;
  int max_replica_lag_ms = 5000;
  int probe_interval_ms = 500;
  // [auth]
  std::string key_file = ".state/cluster.key";
  int session_idle_s = 900;
  int session_absolute_s = 12 * 3600;
  int max_login_failures = 5;         // failures per client and account before that pair waits
  int lockout_s = 900;                // how long the pair waits, and how long an account lock lasts
  int account_lockout_failures = 20;  // failures from any clients that lock the account
  int revocation_poll_ms = 1000;
  int login_burst = 20;            // login attempts per client address at once
  int login_rate_per_minute = 60;  // and refilled per minute
  // The login bulkhead (src/auth/README.md): its own database pool and in-flight limit
  // (per node), and a bounded queue for the password hashing threads.
  int login_pool_size = 2;
  int login_max_in_flight = 16;
  int login_cpu_queue = 4;
  int login_hash_threads = 1;
  // The hashing threads' share of the node's CPU: at most login_cpu_percent of all its
  // usable CPUs (CPU time measured per hash), saved up for login_cpu_burst_s seconds while
  // idle; 100 with login_hash_threads = CPUs is no limit. One Argon2id hash (64 MiB, t=2)
  // takes ~0.1-0.2 CPU-s, so 5% of 8 CPUs is ~2-4 logins a second per node, sustained.
  int login_cpu_percent = 5;
  int login_cpu_burst_s = 2;
  // SCHED_IDLE hashing threads (true): they get a core only when no request thread wants
  // it. false: niceness login_hash_nice (0..19) instead. Where several regions share one
  // host's cores (the local cluster), an idle or niced hash also loses to the other
  // regions' processes and a single login takes seconds: such configs set false and 0.
  bool login_hash_idle = true;
  int login_hash_nice = 10;
  // [cache] the low tier's content cache (articles, recommendations)
  int cache_fresh_ms = 60'000;
  int cache_stale_while_revalidate_ms = 600'000;
  int cache_stale_if_error_ms = 24 * 3600'000;
  int cache_max_entries = 50'000;
  // [dependencies.*] (absent: that dependency's features queue their work)
  std::vector<DependencyConfig> dependencies;
  int job_poll_ms = 1000;  // [jobs] poll_ms: how often queued work is retried
  // [jobs] lock_ms: how long a claimed job is a node's alone (longer than one attempt:
  // the medium deadline); max_attempts: then the job fails for good (portal/medium/jobs).
  int job_lock_ms = 30000;
  int job_max_attempts = 8;
  // [notifications]: the sender of emails, and how often the outbox is polled
  std::string notify_from = "noreply@continuum.example";
  int notify_poll_ms = 1000;
  // [ehr] sync_interval_ms: how often clinical data is synchronised in from the EHR
  // (when [dependencies.ehr] is configured)
  int ehr_sync_interval_ms = 5000;
  // [ops] token_file: the file holding the operations token (hex, one line) that the
  // ops write endpoints (Alertmanager webhook, journey-run reports) and the alert list
  // require as a bearer token. Empty: those endpoints refuse every caller.
  std::string ops_token_file;
  // [ops] prometheus_url: the Prometheus that scrapes the portal nodes (http://host:port).
  // The dashboard's charts come from it through this node (GET /api/v1/ops/series, ops
  // token): the browser talks to one origin only (the CSP's connect-src 'self'). Not PHI,
  // and on the operators' own network: plain HTTP. Empty: no charts.
  std::string prometheus_url;
  // [ops] chaos_hooks: the chaos experiments' hooks inside the node (behind the ops token;
  // POST /api/v1/ops/chaos/pool-hold holds every connection of one tier's pools for a
  // while). Off: those routes answer 403. On for a cluster that practises chaos days.
  bool chaos_hooks = false;
  // [web] root: the folder of the web app's bundle (web/dist, `npm run build`), served
  // under / (src/http/static_site.hpp). Unset: <binary's folder>/../web/dist if it holds
  // an index.html, else no web app (a warning at start). [web] enabled = false: none.
  std::string web_root;
  bool web_enabled = true;

  // [fault_injection]: defects switched on by configuration, for the rollout tests (a "bad
  // release" is this binary with one of these set). Never in a production config: a node
  // with any of them logs a warning at start and exports continuum_fault_injection_active 1.
  //   error_permille    that many of every 1,000 API requests (every tier but ops) are
  //                     answered 500 before any handler work (nothing read or written);
  //                     spread evenly (exactly p of any 1,000 consecutive requests)
  //   extra_latency_ms  added before every API request (an asynchronous timer)
  //   crash_on_start    exit 70 after loading the config, before listening
  //   never_ready       /readyz always 503
  int fault_error_permille = 0;
  int fault_extra_latency_ms = 0;
  bool fault_crash_on_start = false;
  bool fault_never_ready = false;
  bool FaultInjectionActive() const {
    return fault_error_permille > 0 || fault_extra_latency_ms > 0 || fault_crash_on_start ||
           fault_never_ready;
  }
  // [audit]
  bool audit_enabled = true;
  std::string audit_dir = ".state/audit";
  int audit_ship_interval_ms = 200;
  // Records the journal may hold queued (not yet durable) before appends are refused
  // with 503: a stalled disk must not pile up memory.
  int audit_max_pending_records = 20000;
  // Under this much free space on the journal's file system the node reports not-ready
  // (drained by the edge before the disk is full); 0: no reserve.
  int audit_min_free_mb = 8;
  // The journal zero-fills (and syncs) this much of its segment ahead of its writes, so
  // each group commit's fdatasync has no file-system metadata to commit (bench/README.md);
  // 0: plain appends. On a full disk the journal still writes into what it filled.
  int audit_preallocate_kb = 1024;
  // Under load (records queued while a batch was synced) the journal waits this long
  // before its next batch, so one fdatasync covers more records; idle, it writes at once.
  int audit_group_commit_wait_us = 100;
  // The node's Ed25519 key that signs its chain heads (src/audit/README.md); created if
  // missing. Empty: "<audit_dir>/../audit-signing-<node_id>.key" (beside, not inside,
  // the journal folder). Its public key goes into the operators' trusted-keys file.
  std::string audit_signing_key_file;
  int audit_head_interval_ms = 1000;
  std::string AuditSigningKeyFile() const;

  TierLimits& limits(Tier t) { return tiers[static_cast<int>(t)]; }
  const TierLimits& limits(Tier t) const { return tiers[static_cast<int>(t)]; }
};

// Loads `path` over the defaults. Throws std::runtime_error with a message that names
// the file, the key and what is wrong.
Config LoadConfig(const std::string& path);
Config DefaultConfig();

}  // namespace continuum
