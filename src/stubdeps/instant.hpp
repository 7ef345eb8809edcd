// UTC instants as FHIR and the stand-ins' JSON write them ("2026-11-25T17:19:55.123Z"),
// and the FHIR date/dateTime/instant forms a search parameter may carry.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace continuum::stubdeps {

// Milliseconds since the epoch, from the system clock.
int64_t NowMs();

// "YYYY-MM-DDThh:mm:ss.sssZ".
std::string FormatInstant(int64_t epoch_ms);

// The period a FHIR date, dateTime or instant denotes, as [start_ms, end_ms):
// "2026" is the whole year, "2026-10-01" the day, "2026-10-01T10:00:00Z" one second,
// "...:00.250Z" one millisecond. A time needs a zone (Z or +hh:mm / -hh:mm; a space
// stands for '+', as a query string decodes it). Returns nullopt when malformed.
struct Period {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};
std::optional<Period> ParseFhirDateTime(std::string_view s);

}  // namespace continuum::stubdeps
