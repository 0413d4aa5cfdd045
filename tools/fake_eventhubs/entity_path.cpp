#include "entity_path.hpp"

#include <algorithm>
#include <cctype>

namespace connector {

namespace {
char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }
}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string normalized_entity_path(std::string_view text) {
  if (const auto scheme = text.find("://"); scheme != std::string_view::npos) {
    text.remove_prefix(scheme + 3);
    const auto slash = text.find('/');
    text = slash == std::string_view::npos ? std::string_view{} : text.substr(slash + 1);
  }
  while (!text.empty() && text.front() == '/') text.remove_prefix(1);
  while (!text.empty() && text.back() == '/') text.remove_suffix(1);
  std::string path(text);
  std::transform(path.begin(), path.end(), path.begin(), lower);
  return path;
}

bool entity_path_covers(std::string_view granted, std::string_view wanted) {
  if (granted.empty()) return true;
  if (wanted.size() < granted.size() || wanted.substr(0, granted.size()) != granted) return false;
  return wanted.size() == granted.size() || wanted[granted.size()] == '/';
}

std::optional<EventTarget> parse_event_target(std::string_view address) {
  const std::string path = normalized_entity_path(address);
  if (path.empty()) return std::nullopt;
  // Keep the client's spelling of the hub for messages, but match the structure case-insensitively.
  std::string_view original = address;
  if (const auto scheme = original.find("://"); scheme != std::string_view::npos) {
    original.remove_prefix(scheme + 3);
    original.remove_prefix(std::min(original.size(), original.find('/') + 1));
  }
  while (!original.empty() && original.front() == '/') original.remove_prefix(1);
  const auto first_slash = path.find('/');
  if (first_slash == std::string::npos) return EventTarget{std::string(original.substr(0, path.size())), {}};
  constexpr std::string_view kPartitions = "/partitions/";
  if (path.compare(first_slash, kPartitions.size(), kPartitions) != 0) return std::nullopt;
  const std::string id(original.substr(first_slash + kPartitions.size(),
                                       path.size() - first_slash - kPartitions.size()));
  if (id.empty() || id.find('/') != std::string::npos) return std::nullopt;
  return EventTarget{std::string(original.substr(0, first_slash)), id};
}

}  // namespace connector
