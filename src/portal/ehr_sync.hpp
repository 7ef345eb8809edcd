// EHR integration: clinical data is synchronised in from the EHR's FHIR R4 endpoint
// ([dependencies.ehr]), incrementally by _lastUpdated, every [ehr] sync_interval_ms.
//
// Per resource type (Patient, Condition, MedicationStatement, AllergyIntolerance,
// Encounter) a round asks for everything updated after the type's high-water mark,
// follows the Bundle's `next` links, and applies each page in one transaction: the
// upserts (a row changes only when the incoming meta.lastUpdated is newer) and the
// advanced high-water mark together, so a crash never skips data and a replayed page
// changes nothing. Every page's transaction first takes an advisory lock without
// waiting, so one node at a time applies pages.
//
// While the EHR is down the portal keeps serving what it last synchronised (critical
// reads come from PostgreSQL anyway); the record searches say as of when
// (X-Continuum-Data-As-Of) and, once that is old and the EHR's breaker is open,
// X-Continuum-Degraded: stale.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/message.hpp"

namespace continuum::portal {
struct Services;
struct Shard;
}  // namespace continuum::portal

namespace continuum::portal::ehr {

// ---- pure parts (unit-tested)

// One searchset page, mapped to the portal's rows.
struct Page {
  std::string rows;              // JSON array of flat objects, one per row (jsonb_to_recordset)
  int received = 0;              // resources on the page
  int skipped = 0;               // resources that cannot be stored (missing or invalid fields)
  std::string max_last_updated;  // newest meta.lastUpdated on the page ("" if none)
  // What the high-water mark may advance to once the page is applied ("": stay): the
  // newest instant, or on a page with a `next` link the newest one below it.
  std::string high_water;
  std::optional<std::string> next;  // the `next` link as a path relative to the base
};

// Parses a searchset Bundle of `type` (throws std::runtime_error on a malformed one).
Page ParsePage(std::string_view type, std::string_view bundle_json);
// "http://host:port/fhir/R4/Condition?x=1" -> "/fhir/R4/Condition?x=1" (a path stays).
std::string PathOf(std::string_view url);
// The first search of a round: "/fhir/R4/{type}?_lastUpdated=gt{high_water}&_count=N".
std::string SearchPath(std::string_view type, std::string_view high_water, int count);
// Epoch milliseconds -> "2026-11-25T18:00:00.123Z".
std::string FormatInstant(int64_t epoch_ms);

// ---- the sync status this process knows (updated by the loop, read per request)

struct Status {
  int64_t last_success_ms = 0;  // every type synchronised as of then (0: never)
  int64_t last_attempt_ms = 0;
  std::string last_error;
};
Status CurrentStatus();
// Whether the loop runs in this process ([dependencies.ehr] configured).
bool Configured();

// Adds X-Continuum-Data-As-Of (and X-Continuum-Degraded: stale when the last sync is
// older than twice the interval and the EHR's breaker is open) when EHR sync is on.
void Annotate(Services& svc, http::Response& resp);
// The "ehr_sync" object of /readyz.
boost::json::object ReadinessJson();

// Runs rounds until `stop` (co_spawn it on the shard's executor).
boost::asio::awaitable<void> SyncLoop(Shard& shard, Services& svc, const std::atomic<bool>& stop);

}  // namespace continuum::portal::ehr
