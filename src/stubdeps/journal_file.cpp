#include "stubdeps/journal_file.hpp"

#include <stdexcept>

namespace continuum::stubdeps {

void JsonLinesFile::Open(const std::filesystem::path& path,
                         const std::function<void(boost::json::object&&)>& on_line) {
  path_ = path;
  {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      boost::system::error_code ec;
      boost::json::value v = boost::json::parse(line, ec);
      if (!ec && v.is_object()) on_line(std::move(v.as_object()));
    }
  }
  out_.open(path, std::ios::app);
  if (!out_) throw std::runtime_error("cannot open " + path.string() + " for appending");
}

void JsonLinesFile::Append(const boost::json::object& line) {
  if (!out_.is_open()) return;
  out_ << boost::json::serialize(line) << '\n';
  out_.flush();
}

void JsonLinesFile::Truncate() {
  if (!out_.is_open()) return;
  out_.close();
  out_.open(path_, std::ios::trunc);
  out_.close();
  out_.open(path_, std::ios::app);
}

}  // namespace continuum::stubdeps
