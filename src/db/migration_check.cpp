#include "db/migration_check.hpp"

#include <cctype>
#include <set>

namespace continuum::db {
namespace {

struct Token {
  std::string text;  // keywords and identifiers upper-cased; punctuation as is
  int line = 0;
  bool word = false;      // an unquoted keyword or identifier
  bool boundary = false;  // a dollar-quote delimiter: a body starts or ends here
};

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// Splits sql into tokens. Comments (nested /* */ too), string literals and quoted
// identifiers produce no keyword; dollar-quote delimiters become boundary tokens and the
// body between them is tokenized like any other SQL.
std::vector<Token> Tokenize(std::string_view sql) {
  std::vector<Token> out;
  int line = 1;
  std::size_t i = 0;
  const std::size_t n = sql.size();
  auto advance_to = [&](std::size_t end) {
    for (; i < end && i < n; ++i)
      if (sql[i] == '\n') ++line;
  };
  while (i < n) {
    char c = sql[i];
    if (c == '\n') {
      ++line;
      ++i;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      while (i < n && sql[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      int depth = 0;
      while (i < n) {
        if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
          ++depth;
          advance_to(i + 2);
        } else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/') {
          advance_to(i + 2);
          if (--depth == 0) break;
        } else {
          advance_to(i + 1);
        }
      }
    } else if (c == '\'' || c == '"') {
      // 'it''s' and "a""b": a doubled quote stays inside. E'...' strings may escape a
      // quote with a backslash.
      const bool backslash = c == '\'' && !out.empty() && out.back().text == "E" && i > 0 &&
                             (sql[i - 1] == 'E' || sql[i - 1] == 'e');
      if (backslash) out.pop_back();
      const int start_line = line;
      advance_to(i + 1);
      while (i < n) {
        if (backslash && sql[i] == '\\') {
          advance_to(i + 2);
        } else if (sql[i] == c) {
          if (i + 1 < n && sql[i + 1] == c) {
            advance_to(i + 2);
          } else {
            ++i;
            break;
          }
        } else {
          advance_to(i + 1);
        }
      }
      out.push_back({c == '"' ? "\"ident\"" : "'literal'", start_line, false, false});
    } else if (c == '$') {
      // $tag$ or $$: a dollar-quote delimiter; $1: a parameter.
      std::size_t j = i + 1;
      const bool parameter = j < n && std::isdigit(static_cast<unsigned char>(sql[j])) != 0;
      while (!parameter && j < n && IsWordChar(sql[j])) ++j;
      if (!parameter && j < n && sql[j] == '$') {
        out.push_back({std::string(sql.substr(i, j + 1 - i)), line, false, true});
        i = j + 1;
      } else {
        out.push_back({"$", line, false, false});
        ++i;
      }
    } else if (IsWordChar(c)) {
      std::size_t j = i;
      while (j < n && IsWordChar(sql[j])) ++j;
      std::string w(sql.substr(i, j - i));
      for (auto& ch : w) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      out.push_back({std::move(w), line, true, false});
      i = j;
    } else {
      out.push_back({std::string(1, c), line, false, false});
      ++i;
    }
  }
  return out;
}

const std::set<std::string> kDroppedObjects = {"TABLE",     "VIEW",   "MATERIALIZED", "FUNCTION",
                                               "PROCEDURE", "TYPE",   "SCHEMA",       "SEQUENCE",
                                               "DOMAIN",    "COLUMN", "ATTRIBUTE"};
// In ALTER TABLE, DROP followed by one of these does not drop a column.
const std::set<std::string> kAlterTableDropsNoColumn = {"CONSTRAINT", "DEFAULT", "NOT",
                                                        "EXPRESSION", "IDENTITY"};
// ADD followed by one of these adds no column.
const std::set<std::string> kAddsNoColumn = {"CONSTRAINT", "PRIMARY", "UNIQUE",
                                             "CHECK",      "FOREIGN", "EXCLUDE"};
// A statement of a plpgsql body starts after these.
const std::set<std::string> kBodyStatementStarts = {"BEGIN", "THEN", "ELSE", "LOOP"};

}  // namespace

MigrationHeader ParseMigrationHeader(std::string_view sql) {
  MigrationHeader h;
  std::size_t pos = 0;
  while (pos < sql.size()) {
    std::size_t end = sql.find('\n', pos);
    if (end == std::string_view::npos) end = sql.size();
    std::string_view line = sql.substr(pos, end - pos);
    pos = end + 1;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front())))
      line.remove_prefix(1);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())))
      line.remove_suffix(1);
    if (line.empty()) continue;
    if (line.substr(0, 2) != "--") break;  // the leading comment block has ended
    std::string_view body = line.substr(2);
    while (!body.empty() && body.front() == ' ') body.remove_prefix(1);
    constexpr std::string_view kPrefix = "continuum:";
    if (body.substr(0, kPrefix.size()) != kPrefix) continue;
    std::string_view value = body.substr(kPrefix.size());
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (value == "contract") {
      h.kind = MigrationKind::kContract;
    } else if (value == "expand") {
      h.kind = MigrationKind::kExpand;
    } else {
      h.error = "unknown header `-- continuum: " + std::string(value) +
                "` (expected `-- continuum: expand` or `-- continuum: contract`)";
    }
  }
  return h;
}

std::vector<ContractStatement> FindContractStatements(std::string_view sql) {
  const std::vector<Token> t = Tokenize(sql);
  std::vector<ContractStatement> found;
  auto at = [&](std::size_t k) -> const std::string& {
    static const std::string kEmpty;
    return k < t.size() ? t[k].text : kEmpty;
  };
  bool start = true;         // the next token starts a statement
  bool alter_table = false;  // inside ALTER TABLE ... up to its ';'
  int depth = 0;             // parentheses within the current statement
  for (std::size_t i = 0; i < t.size(); ++i) {
    const Token& tok = t[i];
    const bool statement_start = start;
    start = false;
    if (tok.boundary || tok.text == ";") {
      start = true;
      alter_table = false;
      depth = 0;
      continue;
    }
    if (tok.text == "(") ++depth;
    if (tok.text == ")" && depth > 0) --depth;
    if (!tok.word) continue;
    if (kBodyStatementStarts.count(tok.text)) start = true;
    if (statement_start && tok.text == "ALTER" && at(i + 1) == "TABLE") alter_table = true;
    if (statement_start && tok.text == "TRUNCATE") found.push_back({tok.line, "TRUNCATE"});
    if (tok.text == "RENAME") found.push_back({tok.line, "RENAME"});
    if (tok.text == "SET" && at(i + 1) == "NOT" && at(i + 2) == "NULL")
      found.push_back({tok.line, "SET NOT NULL"});
    if (tok.text == "DROP") {
      const std::string& what = at(i + 1);
      if (kDroppedObjects.count(what)) {
        found.push_back(
            {tok.line, what == "MATERIALIZED" ? "DROP MATERIALIZED VIEW" : "DROP " + what});
      } else if (alter_table && depth == 0 && i + 1 < t.size() && t[i + 1].word &&
                 !kAlterTableDropsNoColumn.count(what)) {
        found.push_back({tok.line, "DROP COLUMN"});
      }
    }
    if (alter_table && depth == 0 && !statement_start && tok.text == "ALTER") {
      std::size_t j = i + 1;
      if (at(j) == "COLUMN") ++j;
      ++j;  // the column
      if (at(j) == "TYPE" || (at(j) == "SET" && at(j + 1) == "DATA" && at(j + 2) == "TYPE"))
        found.push_back({tok.line, "ALTER COLUMN ... TYPE"});
    }
    if (alter_table && depth == 0 && tok.text == "ADD" && i + 1 < t.size() &&
        !kAddsNoColumn.count(at(i + 1))) {
      // The column definition runs to the next ',' or ';' at this depth.
      bool not_null = false, has_default = false;
      int d = 0;
      for (std::size_t j = i + 1; j < t.size(); ++j) {
        const std::string& w = t[j].text;
        if (t[j].boundary || w == ";" || (d == 0 && w == ",")) break;
        if (w == "(") ++d;
        if (w == ")") {
          if (d == 0) break;
          --d;
        }
        if (d != 0 || !t[j].word) continue;
        if (w == "NOT" && at(j + 1) == "NULL" && at(j - 1) != "IF") not_null = true;
        if (w == "PRIMARY") not_null = true;
        if (w == "DEFAULT" || w == "GENERATED") has_default = true;
      }
      if (not_null && !has_default)
        found.push_back({tok.line, "ADD COLUMN ... NOT NULL without DEFAULT"});
    }
  }
  return found;
}

std::string CheckMigration(std::string_view file_name, std::string_view sql) {
  const MigrationHeader h = ParseMigrationHeader(sql);
  if (!h.error.empty()) return std::string(file_name) + ": " + h.error;
  if (h.kind == MigrationKind::kContract) return "";
  const auto found = FindContractStatements(sql);
  if (found.empty()) return "";
  std::string msg =
      std::string(file_name) + " is an expand migration but holds contract statements (";
  for (std::size_t i = 0; i < found.size(); ++i)
    msg += (i ? ", " : "") + ("line " + std::to_string(found[i].line) + ": " + found[i].what);
  msg +=
      "); a release that is still running may use what they remove or tighten. Put them in a "
      "migration of their own whose leading comment says `-- continuum: contract`: it runs only "
      "with `continuum migrate --contract`, once no node of an older release is left";
  return msg;
}

}  // namespace continuum::db
