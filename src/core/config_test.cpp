#include "core/config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace continuum {
namespace {

// The files a test wrote, removed when the test binary exits (also after a failure).
struct TempFiles {
  std::vector<std::string> paths;
  ~TempFiles() {
    for (const auto& p : paths) std::remove(p.c_str());
  }
};

std::string Write(const std::string& text) {
  static TempFiles files;
  char path[] = "/tmp/continuum-config-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << text;
  files.paths.emplace_back(path);
  return path;
}

TEST(Config, ReadsKnownKeys) {
  auto p = Write(R"(
[server]
listen_port = 9999
threads = 1
trusted_proxies = ["127.0.0.1", "10.0.0.2"]
[node]
region = "us-east"
[database]
url = "postgresql://x@127.0.0.1:1/db"
[database.critical]
pool_size = 12
[auth]
session_idle_s = 5
)");
  Config c = LoadConfig(p);
  EXPECT_EQ(c.listen_port, 9999);
  EXPECT_EQ(c.threads, 1);
  EXPECT_EQ(c.trusted_proxies, (std::vector<std::string>{"127.0.0.1", "10.0.0.2"}));
  EXPECT_EQ(c.region, "us-east");
  EXPECT_EQ(c.database_url.reveal(), "postgresql://x@127.0.0.1:1/db");
  EXPECT_EQ(c.limits(Tier::kCritical).pool_size, 12);
  EXPECT_EQ(c.session_idle_s, 5);
  std::remove(p.c_str());
}

TEST(Config, ReadsSmtpAndNotifications) {
  auto p = Write(R"(
[dependencies.smtp]
url = "smtp://127.0.0.1:9125"
[dependencies.sms]
url = "https://127.0.0.1:9105"
[notifications]
from = "noreply@continuum.example"
poll_ms = 250
)");
  Config c = LoadConfig(p);
  ASSERT_EQ(c.dependencies.size(), 2u);
  EXPECT_EQ(c.notify_from, "noreply@continuum.example");
  EXPECT_EQ(c.notify_poll_ms, 250);
  EXPECT_THROW(LoadConfig(Write("[dependencies.smtp]\nurl = \"http://127.0.0.1:25\"\n")),
               std::runtime_error);
  EXPECT_THROW(LoadConfig(Write("[dependencies.sms]\nurl = \"smtp://127.0.0.1:25\"\n")),
               std::runtime_error);
  EXPECT_THROW(LoadConfig(Write("[notifications]\nfrom = \"not an address\"\n")),
               std::runtime_error);
}

// PHI goes to the dependencies: a plain http:// URL is refused at load unless
// allow_plaintext = true says so explicitly; https:// and smtp:// (STARTTLS) need no flag.
TEST(Config, PlainHttpDependencyNeedsTheExplicitFlag) {
  try {
    LoadConfig(Write("[dependencies.payments]\nurl = \"http://127.0.0.1:9104\"\n"));
    ADD_FAILURE() << "a plain http:// dependency URL was accepted without allow_plaintext";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("dependencies.payments.url"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("allow_plaintext"), std::string::npos) << e.what();
  }
  Config c = LoadConfig(
      Write("[dependencies.payments]\nurl = \"http://127.0.0.1:9104\"\nallow_plaintext = true\n"
            "[dependencies.smtp]\nurl = \"smtp://127.0.0.1:25\"\nallow_plaintext = true\n"));
  ASSERT_EQ(c.dependencies.size(), 2u);
  EXPECT_TRUE(c.dependencies[0].allow_plaintext);
  auto ca = Write("not checked at load, only readable");
  c = LoadConfig(Write("[dependencies.payments]\nurl = \"https://127.0.0.1:9104\"\nca_file = \"" +
                       ca + "\"\n"));
  EXPECT_EQ(c.dependencies[0].ca_file, ca);
  EXPECT_FALSE(c.dependencies[0].allow_plaintext);
  EXPECT_THROW(LoadConfig(Write("[dependencies.payments]\nurl = \"https://127.0.0.1:9104\"\n"
                                "ca_file = \"/nonexistent/ca.pem\"\n")),
               std::runtime_error);
  EXPECT_THROW(LoadConfig(Write("[dependencies.payments]\nurl = \"ftp://127.0.0.1:9104\"\n")),
               std::runtime_error);
}

TEST(Config, RejectsUnknownKeysNamingThem) {
  auto p = Write("[server]\nlisten_prot = 1\n");
  try {
    LoadConfig(p);
    FAIL() << "unknown key accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("server.listen_prot"), std::string::npos) << e.what();
  }
  std::remove(p.c_str());
}

TEST(Config, ChaosHooksAreOffUnlessTurnedOn) {
  EXPECT_FALSE(LoadConfig(Write("[node]\nregion = \"x\"\n")).chaos_hooks);
  EXPECT_TRUE(LoadConfig(Write("[ops]\nchaos_hooks = true\n")).chaos_hooks);
  EXPECT_THROW(LoadConfig(Write("[ops]\nchaos_hooks = \"yes\"\n")), std::runtime_error);
}

TEST(Config, ReadsPrometheusUrl) {
  EXPECT_TRUE(LoadConfig(Write("[node]\nregion = \"x\"\n")).prometheus_url.empty());
  EXPECT_EQ(
      LoadConfig(Write("[ops]\nprometheus_url = \"http://127.0.0.1:9090/\"\n")).prometheus_url,
      "http://127.0.0.1:9090");
  for (const char* bad : {"https://p:9090", "127.0.0.1:9090", "http://", "http://p/?q=1", ""}) {
    try {
      LoadConfig(Write(std::string("[ops]\nprometheus_url = \"") + bad + "\"\n"));
      ADD_FAILURE() << "accepted " << bad;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("ops.prometheus_url"), std::string::npos) << e.what();
    }
  }
}

TEST(Config, ReadsTheOpsTokenFile) {
  EXPECT_TRUE(LoadConfig(Write("[node]\nregion = \"x\"\n")).ops_token_file.empty());
  EXPECT_EQ(LoadConfig(Write("[ops]\ntoken_file = \"/etc/continuum/ops.token\"\n")).ops_token_file,
            "/etc/continuum/ops.token");
  try {
    LoadConfig(Write("[ops]\ntoken = \"abc\"\n"));
    FAIL() << "unknown key accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("ops.token"), std::string::npos) << e.what();
  }
  EXPECT_THROW(LoadConfig(Write("[ops]\ntoken_file = \"\"\n")), std::runtime_error);
  EXPECT_TRUE(LoadConfig(Write("[node]\nregion = \"x\"\n")).web_root.empty());
  EXPECT_TRUE(LoadConfig(Write("[node]\nregion = \"x\"\n")).web_enabled);
  EXPECT_EQ(LoadConfig(Write("[web]\nroot = \"/srv/web\"\n")).web_root, "/srv/web");
  EXPECT_FALSE(LoadConfig(Write("[web]\nenabled = false\n")).web_enabled);
  EXPECT_THROW(LoadConfig(Write("[web]\nroot = \"\"\n")), std::runtime_error);
  EXPECT_THROW(LoadConfig(Write("[web]\nindex = \"x\"\n")), std::runtime_error);
}

TEST(Config, ReadsTheLoginBulkheadsCpuSettings) {
  auto c = LoadConfig(Write("[node]\nregion = \"x\"\n"));
  EXPECT_TRUE(c.login_hash_idle);
  EXPECT_EQ(c.login_cpu_percent, 5);
  EXPECT_EQ(c.login_cpu_burst_s, 2);
  c =
      LoadConfig(Write("[auth]\nlogin_hash_idle = false\nlogin_hash_nice = 0\n"
                       "login_cpu_percent = 100\nlogin_cpu_burst_s = 0\n"));
  EXPECT_FALSE(c.login_hash_idle);
  EXPECT_EQ(c.login_cpu_percent, 100);
  EXPECT_EQ(c.login_cpu_burst_s, 0);
  for (const char* bad : {"login_cpu_percent = 0", "login_cpu_percent = 101",
                          "login_cpu_burst_s = -1", "login_hash_idle = 1"}) {
    EXPECT_THROW(LoadConfig(Write(std::string("[auth]\n") + bad + "\n")), std::runtime_error)
        << bad;
  }
}

TEST(Config, ReadsTheFaultInjectionKnobsAndRefusesBadOnes) {
  auto c = LoadConfig(Write("[node]\nregion = \"x\"\n"));
  EXPECT_FALSE(c.FaultInjectionActive());
  c = LoadConfig(Write("[fault_injection]\nerror_permille = 10\n"));
  EXPECT_EQ(c.fault_error_permille, 10);
  EXPECT_TRUE(c.FaultInjectionActive());
  c = LoadConfig(Write("[fault_injection]\nextra_latency_ms = 150\nnever_ready = true\n"));
  EXPECT_EQ(c.fault_extra_latency_ms, 150);
  EXPECT_TRUE(c.fault_never_ready);
  EXPECT_FALSE(c.fault_crash_on_start);
  for (const char* bad : {"error_permille = 1001", "error_permille = -1",
                          "extra_latency_ms = 60001", "crash_on_start = 1", "never_ready = \"yes\"",
                          "error_rate = 1", "extra_latency_ms = 99999999999"}) {
    EXPECT_THROW(LoadConfig(Write(std::string("[fault_injection]\n") + bad + "\n")),
                 std::runtime_error)
        << bad;
  }
}

TEST(Config, ReadsTheJournalDiskReserve) {
  EXPECT_EQ(LoadConfig(Write("[node]\nregion = \"x\"\n")).audit_min_free_mb, 8);
  EXPECT_EQ(LoadConfig(Write("[audit]\nmin_free_mb = 0\n")).audit_min_free_mb, 0);
  EXPECT_EQ(LoadConfig(Write("[audit]\nmin_free_mb = 512\n")).audit_min_free_mb, 512);
  for (const char* bad : {"min_free_mb = -1", "min_free_mb = 1048577", "min_free_mb = \"8M\""}) {
    try {
      LoadConfig(Write(std::string("[audit]\n") + bad + "\n"));
      ADD_FAILURE() << bad << " was accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("audit.min_free_mb"), std::string::npos) << e.what();
    }
  }
}

TEST(Config, ReadsTheCriticalFirstLimit) {
  auto d = LoadConfig(Write("[node]\nregion = \"x\"\n"));
  EXPECT_EQ(d.critical_first_in_flight, 2);
  EXPECT_EQ(d.critical_first_threshold, 8);
  EXPECT_EQ(d.critical_first_lag_us, 500);
  EXPECT_EQ(LoadConfig(Write("[server]\ncritical_first_lag_us = 0\n")).critical_first_lag_us, 0);
  EXPECT_EQ(LoadConfig(Write("[server]\ncritical_first_threshold = 1\n")).critical_first_threshold,
            1);
  EXPECT_EQ(LoadConfig(Write("[server]\ncritical_first_in_flight = 0\n")).critical_first_in_flight,
            0);
  EXPECT_EQ(LoadConfig(Write("[server]\ncritical_first_in_flight = 16\n")).critical_first_in_flight,
            16);
  for (const char* bad : {"critical_first_in_flight = -1", "critical_first_in_flight = 100001",
                          "critical_first_in_flight = true", "critical_first_threshold = 0",
                          "critical_first_threshold = 100001", "critical_first_threshold = 2.5",
                          "critical_first_lag_us = -1", "critical_first_lag_us = 10000001"}) {
    try {
      LoadConfig(Write(std::string("[server]\n") + bad + "\n"));
      ADD_FAILURE() << bad << " was accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("server.critical_first_"), std::string::npos)
          << e.what();
    }
  }
}

TEST(Config, ReadsTheReadGroupLimit) {
  EXPECT_EQ(LoadConfig(Write("[node]\nregion = \"x\"\n")).read_group_limit, 16);
  EXPECT_EQ(LoadConfig(Write("[database]\nread_group_limit = 1\n")).read_group_limit, 1);
  for (const char* bad :
       {"read_group_limit = 0", "read_group_limit = 65", "read_group_limit = \"8\""}) {
    try {
      LoadConfig(Write(std::string("[database]\n") + bad + "\n"));
      ADD_FAILURE() << bad << " was accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("database.read_group_limit"), std::string::npos)
          << e.what();
    }
  }
}

TEST(Config, RefusesIntegersTooLargeForTheirSetting) {
  // 2^32 + 4 would wrap to 4 threads in an int
  EXPECT_THROW(LoadConfig(Write("[server]\nthreads = 4294967300\n")), std::runtime_error);
}

TEST(Config, RejectsWrongTypes) {
  auto p = Write("[server]\nthreads = \"two\"\n");
  EXPECT_THROW(LoadConfig(p), std::runtime_error);
  std::remove(p.c_str());
}

TEST(Config, ReadsTheTopologyInOrder) {
  auto p = Write(R"(
[node]
region = "us-central"
[topology]
max_replica_lag_ms = 3000
[[topology.region]]
name = "us-central"
database_url = "host=127.0.0.1 port=2"
[[topology.region]]
name = "us-east"
database_url = "host=127.0.0.1 port=1"
)");
  Config c = LoadConfig(p);
  ASSERT_EQ(c.topology_regions.size(), 2u);
  EXPECT_EQ(c.topology_regions[0].name, "us-central");
  EXPECT_EQ(c.topology_regions[1].database_url.reveal(), "host=127.0.0.1 port=1");
  EXPECT_EQ(c.max_replica_lag_ms, 3000);
  EXPECT_EQ(c.probe_interval_ms, 500);
  std::remove(p.c_str());
}

TEST(Config, TopologyMustNameThisNodesRegion) {
  auto p = Write(R"(
[node]
region = "us-west"
[[topology.region]]
name = "us-east"
database_url = "host=127.0.0.1 port=1"
)");
  try {
    LoadConfig(p);
    FAIL() << "a topology without the node's own region was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("us-west"), std::string::npos) << e.what();
  }
  std::remove(p.c_str());
}

TEST(Config, TopologyEntriesNeedANameAndAUrl) {
  auto p = Write("[node]\nregion = \"a\"\n[[topology.region]]\nname = \"a\"\n");
  EXPECT_THROW(LoadConfig(p), std::runtime_error);
  std::remove(p.c_str());
}

TEST(Config, PublicBaseUrlIsValidatedAndDefaultsToTheListenAddress) {
  Config c = LoadConfig(Write("[server]\nlisten_address = \"127.0.0.1\"\nlisten_port = 9000\n"));
  EXPECT_EQ(c.PublicBaseUrl(), "http://127.0.0.1:9000");
  c = LoadConfig(Write("[server]\nlisten_address = \"0.0.0.0\"\nlisten_port = 9000\n"));
  EXPECT_EQ(c.PublicBaseUrl(), "http://127.0.0.1:9000");
  c = LoadConfig(Write("[server]\nlisten_address = \"::1\"\nlisten_port = 9000\n"));
  EXPECT_EQ(c.PublicBaseUrl(), "http://[::1]:9000");
  c = LoadConfig(Write("[server]\npublic_base_url = \"https://portal.example/\"\n"));
  EXPECT_EQ(c.PublicBaseUrl(), "https://portal.example");
  c = LoadConfig(Write("[server]\npublic_base_url = \"http://127.0.0.1:8080/portal\"\n"));
  EXPECT_EQ(c.PublicBaseUrl(), "http://127.0.0.1:8080/portal");
  for (const char* bad : {"portal.example", "ftp://portal.example", "https://", "https:///x",
                          "https://portal.example/?a=1", "https://portal.example/#f",
                          "https://user@portal.example", "//portal.example", ""}) {
    try {
      LoadConfig(Write(std::string("[server]\npublic_base_url = \"") + bad + "\"\n"));
      ADD_FAILURE() << "accepted " << bad;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("server.public_base_url"), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace continuum
