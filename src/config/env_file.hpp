#pragma once
// Reads `.env` files the way Node's dotenv did for the connector this one replaces, so users keep their file.
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace connector {

/// What a `.env` file holds: its assignments in file order, and one problem per malformed line.
struct EnvFile {
  std::vector<std::pair<std::string, std::string>> entries;  // a repeated key appears again; the last wins
  std::vector<std::string> problems;                         // "<source> line N: …", never the line's text
};

/// Parses `.env` text: `KEY=VALUE`, optional `export `, `#` comments, blank lines; unquoted values are
/// trimmed and lose a ` #comment`; '…' is literal; "…" expands \n \r \t \" \\; `…` is literal; quoted
/// values may span lines. `source` names the text in problems.
EnvFile parse_env_text(std::string_view text, const std::string& source);

/// Reads and parses `path`. A missing file is a problem only when `required` (an explicit --env-file).
EnvFile read_env_file(const std::filesystem::path& path, bool required);

}  // namespace connector
