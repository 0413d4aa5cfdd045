#include "config/env_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace connector {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }

bool is_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-';
}

/// Walks the text once; `pos` always sits at the start of a line between iterations.
class EnvParser {
 public:
  EnvParser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  EnvFile run() {
    while (pos_ < text_.size()) parse_line();
    return std::move(result_);
  }

 private:
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\n'; }
  bool at_line_end() const { return pos_ >= text_.size() || text_[pos_] == '\n'; }
  void skip_blanks() {
    while (pos_ < text_.size() && is_blank(text_[pos_])) ++pos_;
  }
  void skip_rest_of_line() {
    while (!at_line_end()) ++pos_;
    if (pos_ < text_.size()) ++pos_;
    ++line_;
  }
  void problem(int line, const std::string& what) {
    // The line itself is never quoted: it may hold a secret.
    result_.problems.push_back(source_ + " line " + std::to_string(line) + ": " + what);
  }

  void parse_line() {
    skip_blanks();
    if (at_line_end() || peek() == '#') return skip_rest_of_line();
    if (text_.substr(pos_).starts_with("export") && pos_ + 6 < text_.size() && is_blank(text_[pos_ + 6])) {
      pos_ += 6;
      skip_blanks();
    }
    const auto key_start = pos_;
    while (pos_ < text_.size() && is_key_char(text_[pos_])) ++pos_;
    std::string key(text_.substr(key_start, pos_ - key_start));
    skip_blanks();
    if (key.empty() || peek() != '=') {
      problem(line_, "expected KEY=VALUE (KEY made of letters, digits, '_', '.', '-')");
      return skip_rest_of_line();
    }
    ++pos_;  // '='
    const auto value_start = pos_;
    skip_blanks();
    const char quote = peek();
    if (quote == '"' || quote == '\'' || quote == '`') {
      parse_quoted(std::move(key), quote);
    } else {
      parse_unquoted(std::move(key), pos_ > value_start);
    }
  }

  void parse_unquoted(std::string key, bool blank_before) {
    const auto start = pos_;
    while (!at_line_end()) ++pos_;
    std::string_view value = text_.substr(start, pos_ - start);
    // A comment needs whitespace before '#', so "pa#ss" keeps its '#'.
    for (std::size_t i = 1; i < value.size(); ++i) {
      if (value[i] == '#' && is_blank(value[i - 1])) {
        value = value.substr(0, i);
        break;
      }
    }
    if (blank_before && value.starts_with('#')) value = {};  // "KEY= #comment"; "KEY=#x" keeps "#x"
    while (!value.empty() && is_blank(value.back())) value.remove_suffix(1);
    result_.entries.emplace_back(std::move(key), std::string(value));
    skip_rest_of_line();
  }

  void parse_quoted(std::string key, char quote) {
    const int first_line = line_;
    const auto opening = pos_;
    ++pos_;  // opening quote
    std::string value;
    bool closed = false;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == quote) {
        closed = true;
        break;
      }
      if (c == '\n') ++line_;
      if (c == '\\' && pos_ < text_.size()) {
        const char next = text_[pos_];
        if (quote == '"') {
          const char* expanded = next == 'n'    ? "\n"
                                 : next == 'r'  ? "\r"
                                 : next == 't'  ? "\t"
                                 : next == '"'  ? "\""
                                 : next == '\\' ? "\\"
                                                : nullptr;
          if (expanded != nullptr) {
            value += expanded;
            ++pos_;
            continue;
          }
        } else if (next == quote) {
          // As in dotenv, an escaped quote does not end a literal value; the backslash stays.
          value += c;
          value += text_[pos_++];
          continue;
        }
      }
      value += c;
    }
    if (closed) skip_blanks();
    const bool trailing_text = closed && !at_line_end() && peek() != '#';
    // A value may span lines, but one that never closes, or whose "closing" quote is followed by more
    // text on a later line, is most likely a quote left open by mistake (the quote found is the next
    // value's): report the opening line and read on from the line after it, so that one typo does not
    // hide every later setting and problem.
    if (!closed || (trailing_text && line_ > first_line)) {
      problem(first_line, std::string("the value's opening ") + quote + " has no closing " + quote);
      pos_ = opening;
      line_ = first_line;
      return skip_rest_of_line();
    }
    if (trailing_text) {
      problem(line_, "unexpected text after the closing quote");
    } else {
      result_.entries.emplace_back(std::move(key), std::move(value));
    }
    skip_rest_of_line();
  }

  std::string_view text_;
  const std::string& source_;
  std::size_t pos_ = 0;
  int line_ = 1;
  EnvFile result_;
};

}  // namespace

EnvFile parse_env_text(std::string_view text, const std::string& source) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-8 BOM from Windows editors
  std::string normalized;
  normalized.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;  // CRLF → LF, as dotenv
    normalized += text[i];
  }
  return EnvParser(normalized, source).run();
}

EnvFile read_env_file(const std::filesystem::path& path, bool required) {
  const std::string source = "env file \"" + path.string() + "\"";
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::not_found && !required) return {};
  if (std::filesystem::is_directory(status)) return {{}, {source + ": is a directory, not a file"}};
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) return {{}, {source + ": cannot be read: " + std::strerror(errno)}};
  std::string text;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  if (std::ferror(file.get())) return {{}, {source + ": cannot be read: " + std::strerror(errno)}};
  return parse_env_text(text, source);
}

}  // namespace connector
