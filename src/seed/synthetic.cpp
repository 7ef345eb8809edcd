#include "seed/synthetic.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <stdexcept>

#include "auth/password.hpp"

namespace continuum::seed {
namespace {

constexpr std::size_t kMinPasswordChars = 32;

// The facility every synthetic practitioner belongs to (outside every id range in use).
constexpr const char* kSyntheticFacilityId = "900000000000000000";

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

class Conn {
 public:
  explicit Conn(const Secret& url) : conn_(PQconnectdb(url.reveal().c_str())) {
    if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK)
      throw std::runtime_error("synthetic-accounts: cannot connect: " +
                               std::string(conn_ ? PQerrorMessage(conn_.get()) : "out of memory"));
  }
  ResultPtr Exec(const char* what, const char* sql, std::vector<std::string> params = {}) {
    std::vector<const char*> vals;
    for (const auto& p : params) vals.push_back(p.c_str());
    ResultPtr r(PQexecParams(conn_.get(), sql, static_cast<int>(vals.size()), nullptr, vals.data(),
                             nullptr, nullptr, 0));
    auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
      throw std::runtime_error(std::string("synthetic-accounts: ") + what + ": " +
                               PQerrorMessage(conn_.get()));
    return r;
  }

 private:
  std::unique_ptr<PGconn, ConnDeleter> conn_;
};

std::string Value(const ResultPtr& r, int row = 0, int col = 0) {
  return PQgetvalue(r.get(), row, col);
}

// The account `username` for the patient or practitioner `id`: created, or its password
// updated when it no longer matches. Returns 1 when the password changed.
int EnsureAccount(Conn& c, const std::string& username, const std::string& role,
                  const std::string& id, const Secret& password) {
  auto r = c.Exec("find account",
                  "SELECT password_hash, role, coalesce(patient_id::text, ''), "
                  "coalesce(practitioner_id::text, ''), synthetic FROM account WHERE username = $1",
                  {username});
  if (PQntuples(r.get()) == 0) {
    c.Exec("create account",
           "INSERT INTO account (username, password_hash, role, patient_id, practitioner_id, "
           "synthetic) VALUES ($1, $2, $3, CASE WHEN $3 = 'patient' THEN $4::bigint END, CASE "
           "WHEN $3 = 'provider' THEN $4::bigint END, true)",
           {username, auth::HashPassword(password.reveal(), auth::HashCost::kMachineSecret), role,
            id});
    return 0;
  }
  bool linked = Value(r, 0, 1) == role &&
                (role == "patient" ? Value(r, 0, 2) : Value(r, 0, 3)) == id &&
                Value(r, 0, 4) == "t";
  if (!linked)
    throw std::runtime_error("synthetic-accounts: account " + username +
                             " exists but is not this vantage's synthetic " + role +
                             " account; refusing to change it");
  // A hash at another cost (made before synthetic accounts had their own) is replaced
  // like a changed password.
  if (auth::HashHasCost(Value(r, 0, 0), auth::HashCost::kMachineSecret) &&
      auth::VerifyPassword(Value(r, 0, 0), password.reveal()))
    return 0;
  c.Exec("update password",
         "UPDATE account SET password_hash = $2 WHERE username = $1 AND synthetic",
         {username, auth::HashPassword(password.reveal(), auth::HashCost::kMachineSecret)});
  return 1;
}

}  // namespace

std::vector<SyntheticResult> ProvisionSynthetic(const SyntheticOptions& o) {
  if (o.vantages.empty()) throw std::runtime_error("synthetic-accounts: no --vantage given");
  // The accounts' hashes are cheap (auth::HashCost::kMachineSecret): that is only sound
  // for a generated secret, so a short one is refused.
  if (o.password.reveal().size() < kMinPasswordChars)
    throw std::runtime_error(
        "synthetic-accounts: the password must be a generated secret of at least " +
        std::to_string(kMinPasswordChars) +
        " characters (128 random bits, e.g. `openssl rand -hex 16`): synthetic accounts log in "
        "every few seconds and their hashes are cheap");
  for (const auto& v : o.vantages)
    if (v.empty() || v.size() > 64 || !std::all_of(v.begin(), v.end(), [](char ch) {
          return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
        }))
      throw std::runtime_error(
          "synthetic-accounts: vantage names are 1 to 64 characters of "
          "[A-Za-z0-9_-]: " +
          v);
  Conn c(o.database_url);
  std::vector<SyntheticResult> out;
  for (const auto& v : o.vantages) {
    SyntheticResult res;
    res.vantage = v;
    const std::string mrn = "SYNTHETIC-" + v;
    c.Exec("begin", "BEGIN");
    c.Exec("facility",
           "INSERT INTO facility (id, name, city, state) VALUES ($1, 'Continuum synthetic "
           "monitoring', 'Synthetic', 'NA') ON CONFLICT (id) DO NOTHING",
           {kSyntheticFacilityId});
    auto p = c.Exec("find patient", "SELECT id, synthetic FROM patient WHERE mrn = $1", {mrn});
    if (PQntuples(p.get()) == 0) {
      auto id = c.Exec("new id", "SELECT nextval('synthetic_id_seq')");
      res.patient_id = Value(id);
      res.created = true;
      c.Exec("create patient",
             "INSERT INTO patient (id, mrn, family, given, gender, birth_date, facility_id, "
             "synthetic) VALUES ($1, $2, $3, 'Synthetic', 'unknown', '2000-01-01', $4, true)",
             {res.patient_id, mrn, v, kSyntheticFacilityId});
    } else {
      if (Value(p, 0, 1) != "t")
        throw std::runtime_error("synthetic-accounts: a patient with identifier " + mrn +
                                 " exists but is not synthetic; refusing to use it");
      res.patient_id = Value(p);
    }
    auto pr = c.Exec("find practitioner", "SELECT synthetic FROM practitioner WHERE id = $1",
                     {res.patient_id});
    if (PQntuples(pr.get()) == 0) {
      c.Exec("create practitioner",
             "INSERT INTO practitioner (id, npi, family, given, specialty, facility_id, synthetic) "
             "VALUES ($1, $2, $3, 'Synthetic', 'Synthetic monitoring', $4, true)",
             {res.patient_id, mrn, v, kSyntheticFacilityId});
    } else if (Value(pr) != "t") {
      throw std::runtime_error("synthetic-accounts: practitioner " + res.patient_id +
                               " exists but is not synthetic");
    }
    c.Exec("care relationship",
           "INSERT INTO care_relationship (practitioner_id, patient_id, facility_id, since) "
           "VALUES ($1, $1, $2, '2000-01-01') ON CONFLICT DO NOTHING",
           {res.patient_id, kSyntheticFacilityId});
    res.passwords_changed +=
        EnsureAccount(c, "synthetic-patient-" + v, "patient", res.patient_id, o.password);
    res.passwords_changed +=
        EnsureAccount(c, "synthetic-provider-" + v, "provider", res.patient_id, o.password);
    auto slots = c.Exec(
        "slots",
        "INSERT INTO slot (practitioner_id, facility_id, start_at, end_at) SELECT $1, $2, "
        "(current_date + d)::timestamp AT TIME ZONE 'UTC' + h * interval '1 hour', "
        "(current_date + d)::timestamp AT TIME ZONE 'UTC' + h * interval '1 hour' + interval "
        "'30 minutes' FROM generate_series(1, 30) d CROSS JOIN (VALUES (1), (7), (13), (19)) "
        "AS hours(h) ON CONFLICT (practitioner_id, start_at) DO NOTHING",
        {res.patient_id, kSyntheticFacilityId});
    res.slots_added = std::atoi(PQcmdTuples(slots.get()));
    // Bookings a failed run left behind (its cancel step never got through).
    auto stale = c.Exec("cancel stale bookings",
                        "SELECT count(*) FROM (SELECT continuum_cancel(a.id, a.patient_id) FROM "
                        "appointment a WHERE a.patient_id = $1 AND a.status = 'booked' AND "
                        "a.created_at < now() - interval '10 minutes') x",
                        {res.patient_id});
    res.bookings_cancelled = std::atoi(Value(stale).c_str());
    auto pruned = c.Exec("prune notes", "SELECT continuum_prune_synthetic_notes($1, $2)",
                         {res.patient_id, std::to_string(kSyntheticNotesKept)});
    res.notes_pruned = std::atoi(Value(pruned).c_str());
    c.Exec("commit", "COMMIT");
    out.push_back(res);
  }
  return out;
}

}  // namespace continuum::seed
