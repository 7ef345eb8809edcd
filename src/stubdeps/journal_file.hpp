// An append-only JSON-lines file: the stand-ins' "durable-looking" state under
// --data-dir (received payments, messages, mails; idempotency records). Lines are
// flushed to the kernel per append, not fsynced: a stand-in imitates durability, it
// does not need to survive a power cut. A torn last line (crash mid-write) is skipped
// on load.
#pragma once

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

namespace continuum::stubdeps {

class JsonLinesFile {
 public:
  JsonLinesFile() = default;
  // Opens (creating) `path`; calls `on_line` for every well-formed JSON object already in it.
  void Open(const std::filesystem::path& path,
            const std::function<void(boost::json::object&&)>& on_line);
  [[nodiscard]] bool is_open() const { return out_.is_open(); }
  void Append(const boost::json::object& line);
  // Empties the file.
  void Truncate();

 private:
  std::filesystem::path path_;
  std::ofstream out_;
};

}  // namespace continuum::stubdeps
