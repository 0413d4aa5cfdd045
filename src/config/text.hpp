#pragma once
// Small text helpers shared by the configuration parsers (ASCII only: every keyword we compare is ASCII).
#include <string>
#include <string_view>
#include <vector>

namespace connector::text {

constexpr std::string_view kSpace = " \t\r\n\f\v";

/// `s` without leading and trailing ASCII whitespace.
inline std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

/// ASCII lower-case copy.
inline std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

/// Case-insensitive ASCII equality.
inline bool iequals(std::string_view a, std::string_view b) { return to_lower(a) == to_lower(b); }

/// The items of a comma-separated list, each trimmed; empty items are kept (each list says what an empty
/// one means). "" is one empty item.
inline std::vector<std::string_view> split_list(std::string_view list) {
  std::vector<std::string_view> items;
  for (std::size_t start = 0;;) {
    const auto comma = list.find(',', start);
    items.push_back(trim(list.substr(start, comma == std::string_view::npos ? comma : comma - start)));
    if (comma == std::string_view::npos) return items;
    start = comma + 1;
  }
}

}  // namespace connector::text
