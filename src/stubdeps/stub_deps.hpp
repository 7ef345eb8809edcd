// `continuum stub-deps`: realistic stand-ins of the portal's external dependencies for
// tests, demos and chaos experiments, in one process on one I/O thread, each on its
// own listening socket so that "refuse" is real:
//
//   admin      base       fault switches, received logs (admin.hpp)
//   ehr        base + 1   FHIR R4 EHR (ehr_api.hpp, ehr_data.hpp)
//   pharmacy   base + 2   fill status, refills (pharmacy.hpp)
//   insurance  base + 3   eligibility (insurance.hpp)
//   payments   base + 4   idempotent charges, declines (payments.hpp)
//   sms        base + 5   messages (sms.hpp)
//   smtp       base + 25  a minimal real SMTP server (smtp_session.hpp, smtp_server.hpp)
//
// TLS (--tls-cert, --tls-key): the dependency ports (ehr .. sms) then serve HTTPS only
// and SMTP offers STARTTLS, like the real services the portal must verify. The admin
// port stays plain HTTP: it is the tests' and operators' control channel on loopback,
// not a dependency the portal calls. The certificate comes from the caller's own test CA
// (scripts/test-ca: one CA per test cluster or demo state folder, never shared).
//
// Fault modes (fault.hpp) switch at run time through the admin endpoint. With
// --data-dir, what the stand-ins received and their idempotency records are kept in
// JSON-lines files there and reloaded on start, so a restart keeps exactly-once.
#pragma once

#include <cstdint>
#include <string>

#include "stubdeps/ehr_data.hpp"

namespace continuum::stubdeps {

struct StubDepsOptions {
  std::string listen = "127.0.0.1";
  uint16_t base_port = 9100;
  std::string data_dir;  // empty: in memory only
  EhrOptions ehr;
  int ehr_update_interval_ms = 3000;  // one EHR change this often; 0: none
  std::string tls_cert;               // PEM chain; with tls_key: HTTPS and STARTTLS
  std::string tls_key;
};

// Runs until SIGTERM/SIGINT. Returns the exit status (1 when a port cannot be bound).
int RunStubDeps(const StubDepsOptions& options);

}  // namespace continuum::stubdeps
