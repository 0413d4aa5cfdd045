#pragma once
// Hand-rolled JSON string output for the hot path (no DOM): escaping and UTF-8 validation.
#include <string>
#include <string_view>

namespace connector {

/// True when `text` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

/// True when `bytes` go between a JSON string's quotes as they are: printable ASCII, no '"' or '\\'.
bool is_plain_json_text(std::string_view bytes) noexcept;

/// Appends `text` (valid UTF-8) as a quoted JSON string, escaping what RFC 8259 requires.
void append_json_string(std::string& out, std::string_view text);
/// Same in one pass over `bytes` that also checks them: false, with `out` unchanged, when they are
/// not valid UTF-8.
bool append_json_string_if_utf8(std::string& out, std::string_view bytes);

/// Appends bytes as a JSON value: a string when they are valid UTF-8, else {"$base64":"<base64>"}.
void append_json_text_or_base64(std::string& out, std::string_view bytes);
/// Appends bytes as an object key: the string when valid UTF-8, else "$base64:<base64>".
void append_json_key(std::string& out, std::string_view bytes);

/// Standard base64 with padding.
std::string base64_encode(std::string_view bytes);
void append_base64(std::string& out, std::string_view bytes);

}  // namespace connector
