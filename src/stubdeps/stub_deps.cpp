#include "stubdeps/stub_deps.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <memory>

#include "core/log.hpp"
#include "stubdeps/admin.hpp"
#include "stubdeps/api.hpp"
#include "stubdeps/dependency.hpp"
#include "stubdeps/ehr_api.hpp"
#include "stubdeps/fault.hpp"
#include "stubdeps/http_session.hpp"
#include "stubdeps/idempotency.hpp"
#include "stubdeps/instant.hpp"
#include "stubdeps/insurance.hpp"
#include "stubdeps/listener.hpp"
#include "stubdeps/payments.hpp"
#include "stubdeps/pharmacy.hpp"
#include "stubdeps/received_log.hpp"
#include "stubdeps/sms.hpp"
#include "stubdeps/smtp_server.hpp"

namespace continuum::stubdeps {
namespace asio = boost::asio;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;

namespace {

asio::awaitable<void> Trickle(asio::steady_timer& timer, EhrStore& store, int interval_ms,
                              const bool& stopping) {
  while (!stopping) {
    timer.expires_after(std::chrono::milliseconds(interval_ms));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || stopping) break;
    EhrChange c = store.Tick(NowMs());
    spdlog::debug("stub-deps ehr: {} {}/{}", c.created ? "created" : "updated", TypeName(c.type),
                  c.id);
  }
}

// After Close() of every listener: wait (bounded) for the sessions to unwind, then stop.
asio::awaitable<void> Drain(asio::io_context& ioc,
                            const std::vector<std::unique_ptr<Listener>>& listeners) {
  asio::steady_timer t(ioc);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (;;) {
    std::size_t open = 0;
    for (const auto& l : listeners) open += l->connections();
    if (open == 0) co_return;
    if (std::chrono::steady_clock::now() >= deadline) {
      log::Warn("stub-deps: {} connection(s) did not close in time; stopping anyway", open);
      ioc.stop();
      co_return;
    }
    t.expires_after(std::chrono::milliseconds(20));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace

int RunStubDeps(const StubDepsOptions& o) {
  log::Init("stub-deps", "stub-deps");
  if (o.base_port == 0 || int{o.base_port} + kMaxPortOffset > 65535) {
    log::Error("stub-deps: --base-port must be from 1 to {}", 65535 - kMaxPortOffset);
    return 2;
  }
  boost::system::error_code addr_ec;
  const auto address = asio::ip::make_address(o.listen, addr_ec);
  if (addr_ec) {
    log::Error("stub-deps: --listen {} is not an IP address", o.listen);
    return 2;
  }

  if (o.tls_cert.empty() != o.tls_key.empty()) {
    log::Error("stub-deps: --tls-cert and --tls-key go together");
    return 2;
  }
  std::unique_ptr<asio::ssl::context> tls;
  if (!o.tls_cert.empty()) {
    tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    tls->use_certificate_chain_file(o.tls_cert, ec);
    if (!ec) tls->use_private_key_file(o.tls_key, asio::ssl::context::pem, ec);
    if (ec) {
      log::Error("stub-deps: cannot load the TLS certificate {} / key {}: {}", o.tls_cert,
                 o.tls_key, ec.message());
      return 2;
    }
  }

  asio::io_context ioc(1);
  FaultBoard faults;
  std::array<ReceivedLog, kAllDependencies.size()> logs;
  IdempotencyStore payment_keys, refill_keys, sms_keys;
  if (!o.data_dir.empty()) {
    fs::create_directories(o.data_dir);
    for (Dependency d : kAllDependencies)
      logs[Index(d)].Persist(fs::path(o.data_dir) / (std::string(Name(d)) + ".received.jsonl"));
    payment_keys.Persist(fs::path(o.data_dir) / "payments.keys.jsonl");
    refill_keys.Persist(fs::path(o.data_dir) / "pharmacy.keys.jsonl");
    sms_keys.Persist(fs::path(o.data_dir) / "sms.keys.jsonl");
  }

  const auto t0 = std::chrono::steady_clock::now();
  EhrStore ehr(o.ehr);
  log::Info(
      "stub-deps ehr: {} patients, {} conditions, {} medications, {} allergies, {} "
      "encounters generated in {} ms",
      ehr.Count(EhrType::kPatient), ehr.Count(EhrType::kCondition),
      ehr.Count(EhrType::kMedicationStatement), ehr.Count(EhrType::kAllergyIntolerance),
      ehr.Count(EhrType::kEncounter),
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count());

  auto port_of = [&](Dependency d) { return static_cast<uint16_t>(o.base_port + PortOffset(d)); };
  const std::string host = address.is_v6() ? "[" + o.listen + "]" : o.listen;
  EhrApi ehr_api(ehr, logs[Index(Dependency::kEhr)],
                 (tls ? "https://" : "http://") + host + ":" +
                     std::to_string(port_of(Dependency::kEhr)) + "/fhir/R4");
  PharmacyApi pharmacy_api(logs[Index(Dependency::kPharmacy)], refill_keys);
  InsuranceApi insurance_api(logs[Index(Dependency::kInsurance)]);
  PaymentsApi payments_api(logs[Index(Dependency::kPayments)], payment_keys);
  SmsApi sms_api(logs[Index(Dependency::kSms)], sms_keys);

  std::vector<std::unique_ptr<Listener>> listeners;  // admin first, then in kAllDependencies order
  std::array<Listener*, kAllDependencies.size()> by_dep{};
  std::vector<std::unique_ptr<HttpService>> services;
  auto add_http = [&](std::string name, const FaultState* fault, bool fhir, uint16_t port,
                      std::function<http::Response(const http::Request&)> handle) {
    auto svc = std::make_unique<HttpService>();
    svc->name = name;
    svc->fault = fault;
    svc->fhir = fhir;
    svc->handle = std::move(handle);
    if (fault) svc->tls = tls.get();  // every dependency; not the admin endpoint
    const HttpService* s = svc.get();
    services.push_back(std::move(svc));
    listeners.push_back(std::make_unique<Listener>(
        ioc, std::move(name), tcp::endpoint(address, port),
        [s](std::shared_ptr<Connection> c) { return ServeHttp(std::move(c), *s); }));
    return listeners.back().get();
  };

  AdminContext admin_ctx;
  admin_ctx.faults = &faults;
  for (Dependency d : kAllDependencies) admin_ctx.logs[Index(d)] = &logs[Index(d)];
  admin_ctx.ehr = &ehr;
  admin_ctx.admin_port = o.base_port;
  admin_ctx.port = port_of;
  admin_ctx.listening = [&](Dependency d) { return by_dep[Index(d)]->is_open(); };
  admin_ctx.apply = [&](Dependency d, ListenerAction a) -> std::optional<std::string> {
    Listener* l = by_dep[Index(d)];
    if (a == ListenerAction::kClose) {
      l->Close();
      return std::nullopt;
    }
    try {
      l->Open();
    } catch (const std::exception& e) {
      return "cannot listen on port " + std::to_string(l->port()) + " again: " + e.what();
    }
    return std::nullopt;
  };
  AdminApi admin_api(admin_ctx);
  add_http("admin", nullptr, false, o.base_port,
           [&](const http::Request& r) { return admin_api.Handle(r); });

  auto fault_of = [&](Dependency d) { return &faults.Get(d); };
  by_dep[Index(Dependency::kEhr)] =
      add_http("ehr", fault_of(Dependency::kEhr), true, port_of(Dependency::kEhr),
               [&](const http::Request& r) { return ehr_api.Handle(r); });
  by_dep[Index(Dependency::kPharmacy)] =
      add_http("pharmacy", fault_of(Dependency::kPharmacy), false, port_of(Dependency::kPharmacy),
               [&](const http::Request& r) { return pharmacy_api.Handle(r); });
  by_dep[Index(Dependency::kInsurance)] = add_http(
      "insurance", fault_of(Dependency::kInsurance), false, port_of(Dependency::kInsurance),
      [&](const http::Request& r) { return insurance_api.Handle(r); });
  by_dep[Index(Dependency::kPayments)] =
      add_http("payments", fault_of(Dependency::kPayments), false, port_of(Dependency::kPayments),
               [&](const http::Request& r) { return payments_api.Handle(r); });
  by_dep[Index(Dependency::kSms)] =
      add_http("sms", fault_of(Dependency::kSms), false, port_of(Dependency::kSms),
               [&](const http::Request& r) { return sms_api.Handle(r); });

  uint64_t queue_counter = 0;
  SmtpService smtp;
  smtp.fault = fault_of(Dependency::kSmtp);
  smtp.tls = tls.get();
  smtp.next_queue_id = [&queue_counter] {
    return Hex64(StableHash("smtp-queue|" + std::to_string(++queue_counter) + "|" +
                            std::to_string(NowMs())))
        .substr(0, 12);
  };
  smtp.on_mail = [&](const SmtpMail& m) {
    json::array to;
    for (const auto& r : m.to) to.push_back(json::string(r));
    logs[Index(Dependency::kSmtp)].Append(json::object{{"queue_id", m.queue_id},
                                                       {"helo", m.helo},
                                                       {"from", m.from},
                                                       {"to", std::move(to)},
                                                       {"subject", m.subject},
                                                       {"message_id", m.message_id},
                                                       {"size", m.size},
                                                       {"tls", m.tls}},
                                          NowMs());
  };
  listeners.push_back(std::make_unique<Listener>(
      ioc, "smtp", tcp::endpoint(address, port_of(Dependency::kSmtp)),
      [&smtp](std::shared_ptr<Connection> c) { return ServeSmtp(std::move(c), smtp); }));
  by_dep[Index(Dependency::kSmtp)] = listeners.back().get();

  for (auto& l : listeners) {
    try {
      l->Open();
    } catch (const std::exception& e) {
      log::Error("stub-deps: cannot listen on {}:{} for {}: {}", o.listen, l->port(), l->name(),
                 e.what());
      for (auto& other : listeners) other->Close();
      return 1;
    }
  }

  bool stopping = false;
  asio::steady_timer trickle_timer(ioc);
  if (o.ehr_update_interval_ms > 0)
    asio::co_spawn(ioc, Trickle(trickle_timer, ehr, o.ehr_update_interval_ms, stopping),
                   asio::detached);

  asio::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    log::Info("stub-deps: signal {}: stopping", sig);
    stopping = true;
    trickle_timer.cancel();
    for (auto& l : listeners) l->Close();
    asio::co_spawn(ioc, Drain(ioc, listeners), asio::detached);
  });

  log::Info(
      "stub-deps ready on {}: admin {}, ehr {}, pharmacy {}, insurance {}, payments {}, sms {}, "
      "smtp {}{}{}",
      o.listen, o.base_port, port_of(Dependency::kEhr), port_of(Dependency::kPharmacy),
      port_of(Dependency::kInsurance), port_of(Dependency::kPayments), port_of(Dependency::kSms),
      port_of(Dependency::kSmtp), o.data_dir.empty() ? "" : " (data in " + o.data_dir + ")",
      tls ? " (TLS: HTTPS, SMTP STARTTLS)" : " (plain: no --tls-cert)");
  ioc.run();
  log::Info("stub-deps stopped");
  return 0;
}

}  // namespace continuum::stubdeps
