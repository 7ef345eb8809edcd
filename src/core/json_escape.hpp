// JSON string escaping, as boost::json::serialize does it: short forms for " \\ \b \f
// \n \r \t, \u00xx (lower-case hex) for the other control bytes, every other byte as is.
// Used by the logs (log::JsonEscape) and by fhir::JsonWriter for every response string.
#pragma once

#include <string>
#include <string_view>

namespace continuum {

// `s` escaped for inclusion in a JSON string literal (without the quotes).
std::string JsonEscape(std::string_view s);
// The same, appended to `out`.
void AppendJsonEscaped(std::string& out, std::string_view s);

}  // namespace continuum
