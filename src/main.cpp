// continuum: one binary, one subcommand per role (serve, migrate, seed, audit, cluster,
// stub-deps, probe, synthetic-accounts).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "audit/shipper.hpp"
#include "audit/verify.hpp"
#include "chaos/net_proxy.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "core/release.hpp"
#include "db/migrate.hpp"
#include "monitor/probe.hpp"
#include "portal/node.hpp"
#include "portal/routes.hpp"
#include "seed/content.hpp"
#include "seed/seed.hpp"
#include "seed/synthetic.hpp"
#include "stubdeps/stub_deps.hpp"

namespace {

std::string DefaultDatabaseUrl() {
  const char* e = std::getenv("CONTINUUM_DATABASE_URL");
  return e ? e : "postgresql://postgres@127.0.0.1:5432/continuum";
}

// Two roles (src/audit/README.md): `migrate`, `seed` and the other owner tools connect
// as the database owner (CONTINUUM_OWNER_DATABASE_URL, else CONTINUUM_DATABASE_URL);
// `serve` connects as the portal role given by its config's database.url.
std::string DefaultOwnerDatabaseUrl() {
  const char* e = std::getenv("CONTINUUM_OWNER_DATABASE_URL");
  return e && *e ? e : DefaultDatabaseUrl();
}

std::string DefaultMigrationsDir() {
  return std::string(continuum::SourceDir()) + "/db/migrations";
}

// The test build of "release N+1" (CMake option CONTINUUM_TEST_RELEASE_NEXT, see
// src/db/README.md) knows the migrations of db/migrations-next as well.
std::vector<std::string> DefaultExtraMigrationsDirs() {
#ifdef CONTINUUM_TEST_RELEASE_NEXT
  return {std::string(continuum::SourceDir()) + "/db/migrations-next"};
#else
  return {};
#endif
}

// The project's folder (scripts/, deploy/): CONTINUUM_HOME, else the source tree the
// binary was built from.
std::string Home() {
  const char* e = std::getenv("CONTINUUM_HOME");
  return e && *e ? e : continuum::SourceDir();
}

// `continuum cluster ...` runs scripts/cluster (the local multi-region launcher) with
// this binary as the portal nodes' binary.
int RunClusterScript(const std::vector<std::string>& args) {
  std::string script = Home() + "/scripts/cluster";
  if (::access(script.c_str(), X_OK) != 0) {
    std::cerr << "continuum cluster: " << script
              << " not found; set CONTINUUM_HOME to the Continuum folder\n";
    return 1;
  }
  if (!std::getenv("CONTINUUM_BIN")) {
    char self[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
      self[n] = 0;
      ::setenv("CONTINUUM_BIN", self, 1);
    }
  }
  std::vector<char*> argv;
  argv.push_back(script.data());
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(script.c_str(), argv.data());
  std::cerr << "continuum cluster: cannot run " << script << ": " << std::strerror(errno) << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Continuum: a patient portal with zero unplanned downtime"};
  app.require_subcommand(1);

  // serve
  auto* serve = app.add_subcommand("serve", "Run a portal node");
  std::string config_file, listen, db_url, audit_dir, node_id, region, key_file;
  int port = -1, threads = 0;
  bool no_audit = false;
  serve->add_option("--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
  serve->add_option("--listen", listen, "Listen address (overrides the config)");
  serve->add_option("--port", port, "Listen port (overrides the config)");
  serve->add_option("--threads", threads, "Shards / I/O threads (overrides the config)");
  serve->add_option("--database-url", db_url, "PostgreSQL URL (overrides the config)");
  serve->add_option("--audit-dir", audit_dir, "Audit journal folder (overrides the config)");
  serve->add_option("--node-id", node_id, "Node id (overrides the config)");
  serve->add_option("--region", region, "Region name (overrides the config)");
  serve->add_option("--key-file", key_file, "Cluster token key file (overrides the config)");
  serve->add_flag("--no-audit", no_audit, "Disable the audit journal (benchmarks only)");

  // migrate
  auto* migrate = app.add_subcommand("migrate", "Apply database migrations");
  std::string mig_url = DefaultOwnerDatabaseUrl(), mig_dir = DefaultMigrationsDir();
  std::vector<std::string> mig_extra_dirs = DefaultExtraMigrationsDirs();
  int lock_timeout = 2000, node_stale_s = 30;
  bool mig_contract = false, mig_check = false;
  migrate->add_option("--database-url", mig_url, "PostgreSQL URL")->capture_default_str();
  migrate->add_option("--dir", mig_dir, "Migrations folder")->capture_default_str();
  migrate->add_option("--extra-dir", mig_extra_dirs, "More migrations folders")
      ->capture_default_str();
  migrate->add_option("--lock-timeout-ms", lock_timeout, "lock_timeout per migration")
      ->capture_default_str();
  migrate->add_flag("--contract", mig_contract,
                    "Also apply contract migrations (refused while a node of an older release "
                    "is live)");
  migrate
      ->add_option("--node-stale-s", node_stale_s,
                   "A node whose heartbeat is older than this counts as gone")
      ->capture_default_str()
      ->check(CLI::Range(5, 3600));
  migrate->add_flag("--check", mig_check,
                    "Only check the files (names, expand/contract discipline); no database");

  // seed
  auto* seed = app.add_subcommand("seed", "Load a deterministic synthetic population");
  std::string seed_url = DefaultOwnerDatabaseUrl();
  int64_t patients = 1000, facilities = 10;
  uint64_t random_seed = 20261125;
  seed->add_option("--database-url", seed_url, "PostgreSQL URL")->capture_default_str();
  seed->add_option("--patients", patients, "Number of patients")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{50000000}));
  seed->add_option("--facilities", facilities, "Number of facilities")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{100000}));
  seed->add_option("--seed", random_seed, "Random seed")->capture_default_str();

  // audit
  auto* audit = app.add_subcommand("audit", "Audit trail tools");
  audit->require_subcommand(1);
  auto* verify = audit->add_subcommand("verify", "Check journal chains and the audit_event table");
  std::vector<std::string> journals;
  std::string verify_url, trusted_keys;
  verify->add_option("--journal", journals, "Journal folder (repeatable)")->required();
  verify->add_option("--database-url", verify_url, "PostgreSQL URL (omit to check journals only)");
  verify
      ->add_option("--trusted-keys", trusted_keys,
                   "File of \"<node_id> <hex Ed25519 public key>\" lines: the keys signed chain "
                   "heads must verify with (omit: each node's first stored key)")
      ->check(CLI::ExistingFile);
  auto* pubkey = audit->add_subcommand(
      "pubkey",
      "Print a node's chain-head signing public key as a trusted-keys line (creates the key "
      "if missing)");
  std::string pubkey_file, pubkey_node;
  pubkey->add_option("--key-file", pubkey_file, "The node's [audit] signing_key_file")->required();
  pubkey->add_option("--node-id", pubkey_node, "The node's id")->required();
  auto* ship = audit->add_subcommand("ship", "Ship a journal folder to PostgreSQL now");
  std::string ship_dir, ship_url = DefaultDatabaseUrl();
  ship->add_option("--journal", ship_dir, "Journal folder")->required();
  ship->add_option("--database-url", ship_url, "PostgreSQL URL")->capture_default_str();

  auto* content = app.add_subcommand("content", "Health-article library");
  content->require_subcommand(1);
  auto* content_load = content->add_subcommand("load", "Load (upsert) the article library");
  std::string content_url = DefaultOwnerDatabaseUrl(),
              content_file = continuum::seed::DefaultArticlesFile();
  content_load->add_option("--database-url", content_url, "PostgreSQL URL")->capture_default_str();
  content_load->add_option("--file", content_file, "Articles (JSON)")->capture_default_str();
  // stub-deps
  auto* stub = app.add_subcommand(
      "stub-deps",
      "Stand-ins of the external dependencies (EHR, pharmacy, insurance, payments, SMS, SMTP) "
      "with fault modes switchable at run time (admin API on --base-port)");
  continuum::stubdeps::StubDepsOptions stub_opts;
  int stub_base_port = stub_opts.base_port;
  stub->add_option("--listen", stub_opts.listen, "Listen address")->capture_default_str();
  stub->add_option("--base-port", stub_base_port,
                   "Admin port; ehr +1, pharmacy +2, insurance +3, payments +4, sms +5, smtp +25")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535 - 25));
  stub->add_option("--data-dir", stub_opts.data_dir,
                   "Keep received payments, messages, mails and idempotency records here "
                   "(default: in memory)");
  stub->add_option("--ehr-patients", stub_opts.ehr.patients,
                   "Patients in the EHR (the portal's seeded population, same ids)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{20000}));
  stub->add_option("--ehr-facilities", stub_opts.ehr.facilities,
                   "Facilities of that population (as continuum seed --facilities)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{100000}));
  stub->add_option("--seed", stub_opts.ehr.seed, "Random seed (as continuum seed --seed)")
      ->capture_default_str();
  stub->add_option("--tls-cert", stub_opts.tls_cert,
                   "PEM certificate chain: serve HTTPS on the dependency ports and offer SMTP "
                   "STARTTLS (scripts/test-ca makes one)")
      ->check(CLI::ExistingFile);
  stub->add_option("--tls-key", stub_opts.tls_key, "PEM private key of --tls-cert")
      ->check(CLI::ExistingFile);
  stub->add_option("--ehr-update-interval-ms", stub_opts.ehr_update_interval_ms,
                   "One EHR resource created or updated this often (0: never)")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600000));

  // net-proxy
  auto* netproxy = app.add_subcommand(
      "net-proxy",
      "TCP proxies with network faults switchable at run time (latency, jitter, rate limit, "
      "hold, reset, down; admin API on --admin-port): the chaos experiments' slow network");
  continuum::chaos::NetProxyOptions netproxy_opts;
  std::vector<std::string> netproxy_specs;
  netproxy->add_option("--admin-host", netproxy_opts.admin_host, "Admin API address")
      ->capture_default_str();
  netproxy->add_option("--admin-port", netproxy_opts.admin_port, "Admin API port")->required();
  netproxy->add_option("--proxy", netproxy_specs, "NAME,LISTEN_HOST:PORT,UPSTREAM_HOST:PORT")
      ->required();
  netproxy->add_option("--status-file", netproxy_opts.status_file,
                       "Write the bound addresses here (JSON) once listening");
  netproxy
      ->add_option("--connect-timeout-ms", netproxy_opts.connect_timeout_ms,
                   "Upstream connect timeout")
      ->capture_default_str()
      ->check(CLI::Range(1, 60000));

  // probe
  auto* probe = app.add_subcommand(
      "probe",
      "Run the synthetic journeys (deploy/probe/journeys) from every vantage; serves "
      "/metrics, /runs and an Alertmanager receiver on POST /alerts");
  std::string probe_config;
  bool probe_check = false;
  probe->add_option("--config", probe_config, "Prober TOML configuration (deploy/probe/README.md)")
      ->required()
      ->check(CLI::ExistingFile);
  probe->add_flag("--check", probe_check, "Validate the config and the journey files, then exit");

  // synthetic-accounts
  auto* synthetic = app.add_subcommand(
      "synthetic-accounts",
      "Create (idempotently) the prober's synthetic patient, accounts and slots per vantage");
  std::string syn_url = DefaultOwnerDatabaseUrl(), syn_password_file;
  std::vector<std::string> syn_vantages;
  synthetic->add_option("--database-url", syn_url, "PostgreSQL URL")->capture_default_str();
  synthetic->add_option("--vantage", syn_vantages, "Vantage name (repeatable)")->required();
  synthetic
      ->add_option("--password-file", syn_password_file,
                   "File whose first line is the synthetic accounts' password")
      ->required()
      ->check(CLI::ExistingFile);

  auto* version = app.add_subcommand("version", "Print the release (git describe of the build)");

  auto* routes = app.add_subcommand(
      "routes", "Print the route table: each route's tier and access policy (--json)");
  bool routes_json = false;
  routes->add_flag("--json", routes_json, "JSON (the only format)");

  auto* cluster = app.add_subcommand(
      "cluster",
      "Local three-region cluster (etcd, Patroni, portal nodes, HAProxy edge): up | down | "
      "status [--json] | kill-region NAME | start-region NAME | drill | restart-node NAME | "
      "rolling-restart | pg-maintenance [--set P=V] | rollout ... | chaos ...  [--state DIR] "
      "[--port-offset N]");
  cluster->prefix_command();
  auto* rollout = app.add_subcommand(
      "rollout",
      "Canary rollout of a new release on the local cluster (= cluster rollout): --binary PATH "
      "[--overlay FILE] [--steps 1:30m,5:5m,25:5m,50:5m,100] | --status | --resume | --abort | "
      "--command advance|resume|rollback|abort  [--state DIR] [--port-offset N]");
  rollout->prefix_command();
  auto* chaos = app.add_subcommand(
      "chaos",
      "Chaos experiments on the local cluster (= cluster chaos): run FILE | revert | list  "
      "[--state DIR] [--port-offset N]");
  chaos->prefix_command();

  CLI11_PARSE(app, argc, argv);
  if (*cluster) return RunClusterScript(cluster->remaining());
  for (auto* alias : {rollout, chaos}) {
    if (!*alias) continue;
    std::vector<std::string> args{alias->get_name()};
    for (auto& a : alias->remaining()) args.push_back(a);
    return RunClusterScript(args);
  }

  try {
    if (*version) {
      std::cout << continuum::BuildVersion() << "\n";
      return 0;
    }
    if (*routes) {
      std::cout << continuum::portal::RoutesJson() << "\n";
      return 0;
    }
    if (*serve) {
      continuum::Config cfg =
          config_file.empty() ? continuum::DefaultConfig() : continuum::LoadConfig(config_file);
      if (!listen.empty()) cfg.listen_address = listen;
      if (port >= 0) cfg.listen_port = static_cast<uint16_t>(port);
      if (threads > 0) cfg.threads = threads;
      if (!db_url.empty()) cfg.database_url = continuum::Secret(db_url);
      if (!audit_dir.empty()) cfg.audit_dir = audit_dir;
      if (!node_id.empty()) cfg.node_id = node_id;
      if (!region.empty()) cfg.region = region;
      if (!key_file.empty()) cfg.key_file = key_file;
      if (no_audit) cfg.audit_enabled = false;
      return continuum::portal::Serve(cfg);
    }
    if (*migrate) {
      continuum::db::MigrateOptions mo{continuum::Secret(mig_url),
                                       mig_dir,
                                       mig_extra_dirs,
                                       lock_timeout,
                                       mig_contract,
                                       node_stale_s};
      if (mig_check) {
        for (const auto& m : continuum::db::CheckMigrationFiles(mo))
          std::cout << m.file << " " << (m.contract ? "contract" : "expand") << "\n";
        return 0;
      }
      int n = continuum::db::Migrate(mo);
      std::cerr << "migrate: " << n << " migration(s) applied\n";
      return 0;
    }
    if (*seed) {
      continuum::seed::SeedOptions o;
      o.database_url = continuum::Secret(seed_url);
      o.patients = patients;
      o.facilities = facilities;
      o.random_seed = random_seed;
      // The shipped library, when this is a source tree that has it.
      if (std::filesystem::exists(continuum::seed::DefaultArticlesFile()))
        o.articles_file = continuum::seed::DefaultArticlesFile();
      continuum::seed::Run(o);
      return 0;
    }
    if (*content_load) {
      auto r = continuum::seed::LoadArticles(continuum::Secret(content_url), content_file);
      std::cerr << "content: " << r.articles << " article(s), " << r.changed << " changed\n";
      return 0;
    }
    if (*probe) {
      auto cfg = continuum::monitor::LoadProbeConfig(probe_config);
      if (cfg.journeys_dir.empty()) cfg.journeys_dir = Home() + "/deploy/probe/journeys";
      auto journeys = continuum::monitor::LoadJourneysFor(cfg);
      if (probe_check) {
        std::cout << "probe: config OK, " << journeys.size() << " journey(s), "
                  << cfg.vantages.size() << " vantage(s)\n";
        return 0;
      }
      continuum::log::Init("probe", "probe");
      return continuum::monitor::RunProbe(cfg, journeys);
    }
    if (*synthetic) {
      std::ifstream in(syn_password_file, std::ios::binary);
      std::string password;
      std::getline(in, password);
      while (!password.empty() && std::isspace(static_cast<unsigned char>(password.back())))
        password.pop_back();
      continuum::seed::SyntheticOptions o;
      o.database_url = continuum::Secret(syn_url);
      o.vantages = syn_vantages;
      o.password = continuum::Secret(password);
      for (const auto& r : continuum::seed::ProvisionSynthetic(o))
        std::cout << "synthetic-accounts: vantage " << r.vantage << ": patient and practitioner "
                  << r.patient_id << (r.created ? " (created)" : "") << ", " << r.passwords_changed
                  << " password(s) changed, " << r.slots_added << " slot(s) added, "
                  << r.notes_pruned << " note(s) pruned, " << r.bookings_cancelled
                  << " stale booking(s) cancelled\n";
      return 0;
    }
    if (*stub) {
      stub_opts.base_port = static_cast<uint16_t>(stub_base_port);
      return continuum::stubdeps::RunStubDeps(stub_opts);
    }
    if (*netproxy) {
      try {
        for (const auto& spec : netproxy_specs)
          netproxy_opts.proxies.push_back(continuum::chaos::ParseProxySpec(spec));
      } catch (const std::exception& e) {
        std::cerr << "continuum net-proxy: " << e.what() << "\n";
        return 2;
      }
      return continuum::chaos::RunNetProxy(netproxy_opts);
    }
    if (*verify) {
      auto report = continuum::audit::Verify(journals, continuum::Secret(verify_url), trusted_keys);
      for (const auto& n : report.notes) std::cout << "note: " << n << "\n";
      for (const auto& p : report.problems) std::cout << "PROBLEM " << p << "\n";
      std::cout << (report.ok() ? "OK" : "FAILED") << ": " << report.journal_records
                << " journal records, " << report.table_rows << " table rows, "
                << report.problems.size() << " problem(s)\n";
      return report.ok() ? 0 : 1;
    }
    if (*pubkey) {
      std::cout << pubkey_node << " " << continuum::audit::SigningPublicKey(pubkey_file) << "\n";
      return 0;
    }
    if (*ship) {
      continuum::audit::ShipperOptions so;
      so.journal_dir = ship_dir;
      so.database_url = continuum::Secret(ship_url);
      so.interval_ms = 1000;
      so.take_journal_locks = true;  // never read past a live node's durable mark
      continuum::audit::Shipper s(std::move(so));
      auto n = s.ShipOnce();
      std::cout << "shipped " << n << " record(s)\n";
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "continuum: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
