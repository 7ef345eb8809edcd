#include "monitor/probe.hpp"

#include <sodium.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <random>

#include "core/log.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "monitor/probe_state.hpp"

namespace continuum::monitor {
namespace asio = boost::asio;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

double NowUnix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string Date(double unix_seconds) { return Rfc3339(unix_seconds).substr(0, 10); }

std::string RandomHex(std::size_t bytes) {
  std::vector<unsigned char> b(bytes);
  randombytes_buf(b.data(), b.size());
  std::string out;
  for (unsigned char c : b) out += fmt::format("{:02x}", c);
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

http::Response Text(int status, std::string content_type, std::string body) {
  http::Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

http::Response JsonResponse(int status, const json::value& v) {
  return Text(status, "application/json", json::serialize(v));
}

class Prober {
 public:
  Prober(const ProbeConfig& cfg, const std::vector<Journey>& journeys)
      : cfg_(cfg), journeys_(journeys), rng_(std::random_device{}()) {}

  int Run() {
    http::ServerOptions so;
    so.address = cfg_.listen_address;
    so.port = cfg_.listen_port;
    so.body_limit = 1 << 20;
    http::Server server(so, {&ioc_}, {[this](http::Request& req) { return Handle(req); }});
    server.Listen();
    log::Info("probe: listening on {}:{}, {} journey(s) x {} vantage(s) every {} s",
              cfg_.listen_address, server.port(), journeys_.size(), cfg_.vantages.size(),
              cfg_.interval_s);
    for (const auto& j : journeys_)
      for (const auto& v : cfg_.vantages) asio::co_spawn(ioc_, Loop(j, v), asio::detached);
    // SIGTERM: stop accepting, let open scrapes finish (at most 2 s), then stop; runs in
    // flight are abandoned (a run is never half-reported: it is posted when complete).
    server.OnDrained([this]() { asio::post(ioc_, [this]() { ioc_.stop(); }); });
    asio::signal_set signals(ioc_, SIGTERM, SIGINT);
    asio::steady_timer grace(ioc_);
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      log::Info("probe: signal {}: stopping", sig);
      server.Stop();
      grace.expires_after(std::chrono::seconds(2));
      grace.async_wait([this](boost::system::error_code gec) {
        if (!gec) ioc_.stop();
      });
    });
    ioc_.run();
    return 0;
  }

 private:
  std::chrono::milliseconds Jittered(double fraction_min, double fraction_max) {
    std::uniform_real_distribution<double> d(fraction_min, fraction_max);
    return std::chrono::milliseconds(static_cast<int64_t>(cfg_.interval_s * 1000.0 * d(rng_)));
  }

  asio::awaitable<void> Loop(const Journey& j, const Vantage& v) {
    asio::steady_timer timer(ioc_);
    // Spread the first runs over one interval so journeys and vantages do not align.
    timer.expires_after(Jittered(0.0, 1.0));
    co_await timer.async_wait(asio::use_awaitable);
    std::size_t turn = 0;
    for (;;) {
      auto started = Clock::now();
      const std::string& base = v.base_urls[turn++ % v.base_urls.size()];
      RunRecord run;
      try {
        run = co_await RunOnce(j, v, base);
      } catch (const std::exception& e) {
        // Not expected (every step's errors are caught); keep the loop alive.
        log::Error("probe: journey {} vantage {}: {}", j.name, v.name, log::JsonEscape(e.what()));
      }
      if (!run.journey.empty()) {
        if (run.success)
          log::Info("probe: journey {} vantage {} target {}: ok in {:.0f} ms", run.journey,
                    run.vantage, run.target, run.duration_s * 1000);
        else
          log::Warn("probe: journey {} vantage {} target {}: FAILED at step {}: {}", run.journey,
                    run.vantage, run.target, run.failed_step, log::JsonEscape(run.error));
        if (!cfg_.report_url.empty())
          asio::co_spawn(ioc_, Report(json::serialize(RunJson(run)), run.journey, run.vantage),
                         asio::detached);
        state_.Record(std::move(run));
      }
      timer.expires_at(started + Jittered(0.9, 1.1));
      co_await timer.async_wait(asio::use_awaitable);
    }
  }

  Vars BaseVars(const Vantage& v, const std::string& base_url) {
    Vars vars = v.vars;
    double now = NowUnix();
    vars["vantage"] = v.name;
    vars["base_url"] = base_url;
    vars["patient_username"] = v.patient_username;
    vars["provider_username"] = v.provider_username;
    vars["password"] = v.password.reveal();
    vars["patient_identifier"] = v.patient_identifier;
    if (!v.patient_id.empty()) vars["patient_id"] = v.patient_id;
    vars["run_id"] = RandomHex(8);
    vars["today"] = Date(now);
    vars["tomorrow"] = Date(now + 86400);
    vars["now_unix"] = std::to_string(static_cast<int64_t>(now));
    return vars;
  }

  asio::awaitable<RunRecord> RunOnce(const Journey& j, const Vantage& v, std::string base_url) {
    RunRecord run;
    run.journey = j.name;
    run.vantage = v.name;
    run.target = base_url;
    double wall0 = NowUnix();
    auto t0 = Clock::now();
    run.started_at = Rfc3339(wall0);
    Vars vars = BaseVars(v, base_url);
    http::Endpoint ep = http::ParseBaseUrl(base_url);
    bool failed = false;
    for (const Step& s : j.steps) {
      if (failed && !s.always) continue;
      std::string path, body;
      // Later entries win: the journey's headers over the vantage's over the defaults.
      std::vector<std::pair<std::string, std::string>> headers = {{"Accept", "application/json"}};
      headers.insert(headers.end(), v.headers.begin(), v.headers.end());
      try {
        path = Substitute(s.path, vars);
        for (const auto& [k, val] : s.headers) headers.emplace_back(k, Substitute(val, vars));
        if (s.body) body = json::serialize(SubstituteJson(*s.body, vars));
      } catch (const MissingVariable&) {
        continue;  // an always-step whose inputs an earlier failure never captured
      }
      headers.emplace_back("X-Request-Id", "probe-" + vars["run_id"] + "-" + s.name);
      StepRecord rec;
      rec.name = s.name;
      rec.method = s.method;
      rec.path = path.substr(0, path.find('?'));
      rec.budget_ms = s.budget_ms;
      StepVerdict verdict;
      auto ts = Clock::now();
      try {
        auto resp = co_await http::Fetch(ep, s.method, path, std::move(headers), std::move(body),
                                         std::chrono::milliseconds(cfg_.request_timeout_ms));
        rec.status = resp.status;
        verdict = Evaluate(s, resp.status, resp.body, resp.headers, vars);
      } catch (const http::TransportError& e) {
        verdict.reason = FailReason::kTransport;
        verdict.excerpt = std::string(e.what()).substr(0, 160);
      }
      rec.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - ts).count();
      if (verdict.ok() && rec.duration_ms > s.budget_ms) {
        verdict.reason = FailReason::kBudget;
        verdict.excerpt =
            fmt::format("{:.0f} ms, over the budget of {} ms", rec.duration_ms, s.budget_ms);
      }
      rec.ok = verdict.ok();
      rec.reason = std::string(ReasonName(verdict.reason));
      rec.excerpt = std::move(verdict.excerpt);
      if (!rec.ok) {
        if (run.failed_step.empty()) {
          run.failed_step = s.name;
          run.error = s.name + ": " + rec.reason + (rec.excerpt.empty() ? "" : ": " + rec.excerpt);
        }
        failed = true;
      }
      run.steps.push_back(std::move(rec));
    }
    run.success = run.failed_step.empty();
    run.duration_s = std::chrono::duration<double>(Clock::now() - t0).count();
    run.finished_unix = NowUnix();
    run.finished_at = Rfc3339(run.finished_unix);
    co_return run;
  }

  asio::awaitable<void> Report(std::string body, std::string journey, std::string vantage) {
    std::string why;
    try {
      http::Endpoint ep = http::ParseBaseUrl(cfg_.report_url);
      std::vector<std::pair<std::string, std::string>> headers = {
          {"Content-Type", "application/json"}};
      if (!cfg_.report_token.empty())
        headers.emplace_back("Authorization", "Bearer " + cfg_.report_token.reveal());
      // Fetch asks for base_path + path: the URL's own path, or "/".
      std::string path = ep.base_path.empty() ? "/" : "";
      auto r = co_await http::Fetch(ep, "POST", path, std::move(headers), std::move(body),
                                    std::chrono::milliseconds(cfg_.report_timeout_ms));
      if (r.status < 200 || r.status > 299) why = "status " + std::to_string(r.status);
    } catch (const std::exception& e) {
      why = e.what();
    }
    if (!why.empty()) {
      state_.CountReportFailure();
      log::Warn("probe: reporting a run of journey {} vantage {} failed: {}", journey, vantage,
                log::JsonEscape(why));
    }
  }

  asio::awaitable<http::Response> Handle(http::Request& req) {
    if (req.path == "/metrics" && req.method == "GET")
      co_return Text(200, "text/plain; version=0.0.4; charset=utf-8", state_.RenderMetrics());
    if (req.path == "/runs" && req.method == "GET") co_return JsonResponse(200, state_.RunsJson());
    if (req.path == "/alerts" && req.method == "POST") co_return Alerts(req);
    if (req.path == "/healthz" && req.method == "GET")
      co_return JsonResponse(200, json::object{{"status", "ok"}});
    co_return JsonResponse(404, json::object{{"error",
                                              "no such endpoint: GET /metrics, GET "
                                              "/runs, POST /alerts"}});
  }

  // Alertmanager webhook (payload version 4): one JSON line per alert.
  http::Response Alerts(const http::Request& req) {
    if (cfg_.alerts_log_file.empty())
      return JsonResponse(404, json::object{{"error", "no [alerts] log_file configured"}});
    if (!cfg_.alerts_token.empty() &&
        !ConstantTimeEquals(req.header("authorization"), "Bearer " + cfg_.alerts_token.reveal()))
      return JsonResponse(401, json::object{{"error", "bearer token required"}});
    boost::system::error_code ec;
    json::value v = json::parse(req.body, ec);
    const json::array* alerts = nullptr;
    if (!ec && v.is_object())
      if (auto* a = v.as_object().if_contains("alerts"); a && a->is_array())
        alerts = &a->as_array();
    if (!alerts)
      return JsonResponse(400, json::object{{"error",
                                             "expected an Alertmanager webhook payload "
                                             "with an alerts list"}});
    std::string received_at = Rfc3339(NowUnix());
    std::string lines;
    for (const auto& a : *alerts) {
      if (!a.is_object()) continue;
      const auto& o = a.as_object();
      json::object line{{"received_at", received_at}};
      for (const char* k : {"status", "labels", "startsAt", "endsAt", "fingerprint"})
        if (auto* f = o.if_contains(k)) line[k] = *f;
      lines += json::serialize(line) + "\n";
      std::string name = "?";
      if (auto* l = o.if_contains("labels"); l && l->is_object())
        if (auto* n = l->as_object().if_contains("alertname"); n && n->is_string())
          name = std::string(n->as_string());
      std::string status = "?";
      if (auto* s = o.if_contains("status"); s && s->is_string())
        status = std::string(s->as_string());
      log::Info("probe: alert {} {}", log::JsonEscape(name), log::JsonEscape(status));
    }
    std::ofstream out(cfg_.alerts_log_file, std::ios::app | std::ios::binary);
    out << lines;
    out.flush();
    if (!out) {
      log::Error("probe: cannot append to the alerts log {}", cfg_.alerts_log_file);
      return JsonResponse(500, json::object{{"error", "cannot write the alerts log"}});
    }
    return JsonResponse(200, json::object{{"received", alerts->size()}});
  }

  const ProbeConfig& cfg_;
  const std::vector<Journey>& journeys_;
  asio::io_context ioc_{1};
  std::mt19937_64 rng_;
  ProbeState state_;
};

}  // namespace

std::vector<Journey> LoadJourneysFor(const ProbeConfig& config) {
  // The variables every vantage provides.
  std::set<std::string> common;
  for (std::size_t i = 0; i < config.vantages.size(); ++i) {
    auto vars = RunnerVariables(config.vantages[i]);
    if (i == 0) {
      common = vars;
    } else {
      std::set<std::string> both;
      for (const auto& n : vars)
        if (common.count(n)) both.insert(n);
      common = std::move(both);
    }
  }
  return LoadJourneys(config.journeys_dir, common);
}

int RunProbe(const ProbeConfig& config, const std::vector<Journey>& journeys) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  Prober p(config, journeys);
  return p.Run();
}

}  // namespace continuum::monitor
