#include "support/pg_instance.hpp"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/release.hpp"
#include "db/migrate.hpp"

namespace continuum::testing {
namespace {

constexpr const char* kTemplateDb = "continuum_template";

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};

std::unique_ptr<PGconn, ConnDeleter> Connect(const std::string& url) {
  std::unique_ptr<PGconn, ConnDeleter> conn(PQconnectdb(url.c_str()));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error("PgInstance: cannot connect to " + url + ": " +
                             Trimmed(conn ? PQerrorMessage(conn.get()) : "out of memory"));
  }
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

std::unique_ptr<PGresult, ResultDeleter> Run(PGconn* conn, const std::string& sql) {
  std::unique_ptr<PGresult, ResultDeleter> r(PQexec(conn, sql.c_str()));
  auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error("PgInstance: `" + sql.substr(0, 200) +
                             "` failed: " + Trimmed(PQerrorMessage(conn)));
  }
  return r;
}

// The pid in DIR/data/postmaster.pid, or 0.
int PostmasterPid(const std::string& dir) {
  std::ifstream in(dir + "/data/postmaster.pid");
  int pid = 0;
  if (in >> pid) return pid;
  return 0;
}

// Fields of /proc/PID/stat after the command name: state, ppid, ...
bool ReadStat(int pid, char* state, int* ppid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 1));
  return static_cast<bool>(rest >> *state >> *ppid);
}

// Running (a zombie counts as gone).
bool IsAlive(int pid) {
  char state = 0;
  int ppid = 0;
  return ReadStat(pid, &state, &ppid) && state != 'Z' && state != 'X';
}

std::vector<int> ChildrenOf(int parent) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    char state = 0;
    int ppid = 0;
    const int pid = std::atoi(name.c_str());
    if (ReadStat(pid, &state, &ppid) && ppid == parent) out.push_back(pid);
  }
  return out;
}

}  // namespace

PgInstance& PgInstance::Shared() {
  // Booted once; a failed boot is reported to every test that asks, without retrying
  // initdb for each of them.
  static std::string boot_error;
  static PgInstance* instance = []() -> PgInstance* {
    static PgInstance storage;  // destroyed (stopped) at exit
    try {
      storage.Boot();
    } catch (const std::exception& e) {
      boot_error = e.what();
    }
    return &storage;
  }();
  if (!boot_error.empty()) throw std::runtime_error("PgInstance failed to start: " + boot_error);
  return *instance;
}

PgInstance::PgInstance() {
  pg_tmp_ = std::string(continuum::SourceDir()) + "/scripts/pg-tmp";
  migrations_dir_ = std::string(continuum::SourceDir()) + "/db/migrations";
}

PgInstance::~PgInstance() {
  if (!dir_.empty()) {
    try {
      PgTmp("stop");  // idempotent
    } catch (...) {
      try {
        PgTmp("kill");
      } catch (...) {
      }
    }
    if (!std::getenv("CONTINUUM_KEEP_PG")) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  if (watchdog_fd_ >= 0) {
    ::close(watchdog_fd_);  // the watchdog sees EOF, finds nothing left to do, exits
    if (watchdog_pid_ > 0) ::waitpid(static_cast<pid_t>(watchdog_pid_), nullptr, 0);
  }
}

void PgInstance::Boot() {
  char tmpl[] = "/tmp/continuum-pg-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("PgInstance: mkdtemp failed");
  dir_ = tmpl;
  if (::geteuid() == 0) {
    // PostgreSQL refuses to run as root; pg-tmp runs it as postgres.
    struct passwd* pw = ::getpwnam("postgres");
    if (!pw) throw std::runtime_error("PgInstance: no postgres user (run scripts/setup)");
    if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error("PgInstance: cannot chown " + dir_ + " to postgres");
    }
  }
  StartWatchdog();

  std::string url = Trimmed(PgTmp("start"));
  running_ = true;
  const auto colon = url.rfind(':');
  const auto slash = url.rfind('/');
  if (colon == std::string::npos || slash == std::string::npos || slash < colon) {
    throw std::runtime_error("PgInstance: unexpected pg-tmp output: " + url);
  }
  port_ = std::stoi(url.substr(colon + 1, slash - colon - 1));

  const std::string admin = UrlFor("postgres");
  // Migrated by the owner role (pg-tmp created it and continuum_portal): the portal
  // role gets only the grants of db/migrations/0013_roles.sql.
  Exec(admin, std::string("CREATE DATABASE ") + kTemplateDb + " OWNER continuum_owner");
  db::MigrateOptions options;
  options.database_url = Secret(UrlFor(kTemplateDb, "continuum_owner"));
  options.migrations_dir = migrations_dir_;
  db::Migrate(options);
  // No connections to the template from now on (CREATE DATABASE ... TEMPLATE needs
  // the template to be idle).
  Exec(admin, std::string("ALTER DATABASE ") + kTemplateDb +
                  " WITH IS_TEMPLATE true ALLOW_CONNECTIONS false");
  // pg-tmp created an empty `continuum`; replace it by a migrated copy.
  Exec(admin, "DROP DATABASE IF EXISTS continuum");
  Exec(admin,
       std::string("CREATE DATABASE continuum OWNER continuum_owner TEMPLATE ") + kTemplateDb);
}

void PgInstance::StartWatchdog() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("PgInstance: pipe2 failed");
  const char* keep = std::getenv("CONTINUUM_KEEP_PG");
  const std::string keep_flag = keep ? keep : "";
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("PgInstance: fork failed");
  if (pid == 0) {
    // Child: its own session, so a Ctrl-C to the test's process group does not kill the
    // cleanup. stdin is the read end of the pipe: EOF means the test process is gone.
    ::setsid();
    ::dup2(fds[0], 0);  // dup2 clears FD_CLOEXEC on the new descriptor
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, 1);
    ::close_range(3, ~0U, 0);
    ::chdir("/");
    const char* script =
        "cat >/dev/null; \"$0\" stop \"$1\" >/dev/null 2>&1 || \"$0\" kill \"$1\" >/dev/null 2>&1; "
        "[ -n \"$2\" ] || rm -rf \"$1\"";
    ::execl("/bin/sh", "sh", "-c", script, pg_tmp_.c_str(), dir_.c_str(), keep_flag.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[0]);
  watchdog_fd_ = fds[1];
  watchdog_pid_ = pid;
}

std::string PgInstance::PgTmp(const std::string& command) const {
  // cd / : the postgres user may not be allowed into the test's working directory.
  const std::string cmd = "cd / && " + ShellQuote(pg_tmp_) + " " + command + " " + ShellQuote(dir_);
  FILE* p = ::popen(cmd.c_str(), "re");
  if (!p) throw std::runtime_error("PgInstance: cannot run " + cmd);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("PgInstance: `pg-tmp " + command + " " + dir_ + "` failed (see " +
                             dir_ + "/postgres.log)");
  }
  return out;
}

std::string PgInstance::url() const { return UrlFor("continuum"); }

std::string PgInstance::UrlFor(const std::string& database, const std::string& user) const {
  return "postgresql://" + user + "@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

std::string PgInstance::AsRole(const std::string& url, const std::string& user) {
  const std::string prefix = "postgresql://postgres@";
  if (url.rfind(prefix, 0) != 0) throw std::runtime_error("PgInstance::AsRole: not a test URL");
  return "postgresql://" + user + "@" + url.substr(prefix.size());
}

std::string PgInstance::FreshDatabase() {
  std::string name;
  {
    std::lock_guard lock(mu_);
    name = "test_" + std::to_string(::getpid()) + "_" + std::to_string(++next_db_);
  }
  Exec(UrlFor("postgres"),
       "CREATE DATABASE " + name + " OWNER continuum_owner TEMPLATE " + kTemplateDb);
  return UrlFor(name);
}

void PgInstance::Exec(const std::string& url, const std::string& sql) {
  auto conn = Connect(url);
  Run(conn.get(), sql);
}

std::string PgInstance::QueryValue(const std::string& url, const std::string& sql) {
  auto conn = Connect(url);
  auto r = Run(conn.get(), sql);
  if (PQntuples(r.get()) == 0 || PQnfields(r.get()) == 0 || PQgetisnull(r.get(), 0, 0)) return "";
  return PQgetvalue(r.get(), 0, 0);
}

void PgInstance::Stop() {
  std::lock_guard lock(mu_);
  PgTmp("stop");
  running_ = false;
}

void PgInstance::Kill() {
  std::lock_guard lock(mu_);
  // The postmaster's children are reparented when it dies, so remember them first and
  // wait until they are gone too: a restart fails while any of them still holds the
  // shared memory.
  std::vector<int> pids;
  const int postmaster = PostmasterPid(dir_);
  if (postmaster > 0) {
    pids = ChildrenOf(postmaster);
    pids.push_back(postmaster);
  }
  PgTmp("kill");
  running_ = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline &&
         std::any_of(pids.begin(), pids.end(), IsAlive)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void PgInstance::Start() {
  std::lock_guard lock(mu_);
  // After a SIGKILL the postmaster stays a zombie until PID 1 reaps it, which can take
  // seconds here; PostgreSQL sees its pid "alive" and refuses to start. Lock files
  // (data directory and socket) whose process is dead or a zombie are stale: remove.
  const int postmaster = PostmasterPid(dir_);
  if (postmaster > 0 && !IsAlive(postmaster)) {
    std::error_code ec;
    std::filesystem::remove(dir_ + "/data/postmaster.pid", ec);
    std::filesystem::remove(dir_ + "/.s.PGSQL." + std::to_string(port_) + ".lock", ec);
  }
  PgTmp("start");  // same folder: the port file pins the port
  running_ = true;
}

bool PgInstance::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

}  // namespace continuum::testing
