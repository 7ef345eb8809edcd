#include "core/log.hpp"

#include <poll.h>
#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>

#include "core/metrics.hpp"

namespace continuum::log {

namespace {

constexpr std::size_t kQueueLines = 8192;
constexpr int kStallMs = 200;

std::shared_ptr<spdlog::logger> g_access;
std::shared_ptr<spdlog::logger> g_event;
std::atomic<uint64_t> g_stalled{0};
std::atomic<bool> g_writer_stalled{false};

// Writes formatted lines to a file descriptor from the logging thread only (null_mutex:
// every sink is called from the one worker of the async thread pool). A line waits at
// most kStallMs for the descriptor to accept it; once stderr has stalled, further lines
// are dropped at once until it is writable again, so a reader that never reads costs one
// wait, not one per line.
class FdSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  explicit FdSink(int fd) : fd_(fd) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    const char* p = buf.data();
    std::size_t left = buf.size();
    while (left > 0) {
      pollfd pfd{fd_, POLLOUT, 0};
      int r = ::poll(&pfd, 1, g_writer_stalled.load() ? 0 : kStallMs);
      if (r <= 0 || (pfd.revents & (POLLERR | POLLNVAL)) != 0) {
        if (r < 0 && errno == EINTR) continue;
        g_writer_stalled.store(true);
        g_stalled.fetch_add(1);
        return;
      }
      g_writer_stalled.store(false);
      // At most one pipe buffer page per write: POLLOUT on a pipe promises about that
      // much room, so the write does not block.
      ssize_t n = ::write(fd_, p, std::min<std::size_t>(left, 4096));
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        g_stalled.fetch_add(1);
        return;
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  void flush_() override {}

 private:
  int fd_;
};

std::shared_ptr<spdlog::logger> MakeLogger(const std::string& name, const std::string& pattern) {
  auto sink = std::make_shared<FdSink>(STDERR_FILENO);
  // A sink has one formatter, so every logger gets a sink of its own.
  auto logger = std::make_shared<spdlog::async_logger>(
      name, sink, spdlog::thread_pool(), spdlog::async_overflow_policy::overrun_oldest);
  logger->set_pattern(pattern, spdlog::pattern_time_type::utc);
  return logger;
}

}  // namespace

Dropped DroppedLines() {
  Dropped d;
  if (auto tp = spdlog::thread_pool()) d.queue_full = tp->overrun_counter();
  d.stderr_stalled = g_stalled.load();
  return d;
}

void Flush() {
  for (auto* l : {spdlog::default_logger_raw(), g_access.get(), g_event.get()})
    if (l) l->flush();
}

void Init(const std::string& component, const std::string& node_id, bool verbose) {
  static std::once_flag once;
  std::call_once(once, [] {
    spdlog::init_thread_pool(kQueueLines, 1);
    Metrics::Get().AddCollector([](std::string& out) {
      auto d = DroppedLines();
      out += "# TYPE continuum_log_dropped_lines_total counter\n";
      out += fmt::format("continuum_log_dropped_lines_total{{reason=\"queue_full\"}} {}\n",
                         d.queue_full);
      out += fmt::format("continuum_log_dropped_lines_total{{reason=\"stderr_stalled\"}} {}\n",
                         d.stderr_stalled);
    });
  });
  auto logger =
      MakeLogger("continuum", R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","component":")" +
                                  JsonEscape(component) + R"(","node":")" + JsonEscape(node_id) +
                                  R"(","msg":"%v"})");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);
  g_access = MakeLogger("access", R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","type":"access","node":")" +
                                      JsonEscape(node_id) + R"(",%v})");
  g_event = MakeLogger("event", R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","component":")" +
                                    JsonEscape(component) + R"(","node":")" + JsonEscape(node_id) +
                                    R"(",%v})");
  // Lines that matter before a crash: an error is written as soon as the worker gets to it.
  logger->flush_on(spdlog::level::err);
}

void Access(const std::string& json_fields) {
  if (g_access) g_access->info(json_fields);
}

void Event(spdlog::level::level_enum level, const std::string& json_fields) {
  if (g_event) g_event->log(level, json_fields);
}

}  // namespace continuum::log
