// The EHR stand-in's data: FHIR R4 Patient, Condition, MedicationStatement,
// AllergyIntolerance and Encounter resources for a deterministic population.
//
// The population is the portal's own synthetic one (seed/population.hpp): with the same
// --patients/--facilities/--seed as `continuum seed`, patient n here is patient n there
// (identifier urn:continuum:mrn|MRN000000000n, same name, birth date, allergies,
// medications, conditions and encounters, same row ids). The EHR is thus "the source"
// the portal's records came from. meta.lastUpdated of the initial data is spread
// deterministically over the 90 days before the seed's reference day.
//
// Tick() applies one change (a medication stopped, an encounter added, ...) stamped with
// the current time, so an incremental sync (_lastUpdated=gt<last sync>) always has
// something new to fetch. Searches page with a keyset cursor on (lastUpdated, id), so a
// change during paging never makes a client skip a resource (it may see it twice).
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "seed/random.hpp"

namespace continuum::stubdeps {

enum class EhrType { kPatient, kCondition, kMedicationStatement, kAllergyIntolerance, kEncounter };
inline constexpr int kEhrTypeCount = 5;

std::string_view TypeName(EhrType t);
std::optional<EhrType> ParseEhrType(std::string_view name);

struct EhrOptions {
  int64_t patients = 300;
  int64_t facilities = 10;
  uint64_t seed = 20261125;  // `continuum seed`'s default
};

struct EhrResource {
  EhrType type = EhrType::kPatient;
  int64_t id = 0;
  int64_t patient_id = 0;
  int64_t last_updated_ms = 0;
  int version = 1;
  boost::json::object body;  // the resource without id and meta

  // The full FHIR resource: resourceType, id, meta {versionId, lastUpdated}, body.
  [[nodiscard]] boost::json::object ToFhir() const;
};

using EhrCursor = std::pair<int64_t, int64_t>;  // (last_updated_ms, id)

struct EhrQuery {
  int64_t from_ms = std::numeric_limits<int64_t>::min();  // lastUpdated >= from_ms
  int64_t to_ms = std::numeric_limits<int64_t>::max();    // lastUpdated < to_ms
  std::optional<int64_t> patient;                         // only this patient's resources
  std::optional<EhrCursor> after;                         // strictly after this position
  int count = 50;
};

struct EhrPage {
  std::vector<const EhrResource*> resources;  // in (lastUpdated, id) order
  int64_t total = 0;                          // matches of the query, ignoring cursor and count
  std::optional<EhrCursor> next;              // set when there are more
};

struct EhrChange {
  EhrType type = EhrType::kPatient;
  int64_t id = 0;
  bool created = false;
};

class EhrStore {
 public:
  explicit EhrStore(const EhrOptions& options);

  [[nodiscard]] EhrPage Search(EhrType type, const EhrQuery& q) const;
  [[nodiscard]] const EhrResource* Read(EhrType type, int64_t id) const;
  [[nodiscard]] std::size_t Count(EhrType type) const { return tables_[Idx(type)].rows.size(); }
  [[nodiscard]] int64_t patients() const { return patients_; }
  [[nodiscard]] int64_t max_last_updated_ms() const { return max_last_updated_ms_; }

  // One new or updated resource, stamped max(now_ms, latest + 1 ms).
  EhrChange Tick(int64_t now_ms);

 private:
  struct Table {
    std::map<int64_t, EhrResource> rows;
    std::set<EhrCursor> by_updated;
    std::vector<int64_t> ids;  // insertion order: for picking one at random
    int64_t next_id = 1;
  };
  static std::size_t Idx(EhrType t) { return static_cast<std::size_t>(t); }
  void Add(EhrResource r);
  EhrResource& Touch(EhrType type, int64_t id, int64_t now_ms);
  const EhrResource& Pick(EhrType type);

  int64_t patients_;
  Table tables_[kEhrTypeCount];
  int64_t max_last_updated_ms_ = 0;
  seed::Rng trickle_;
};

}  // namespace continuum::stubdeps
