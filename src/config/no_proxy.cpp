#include "config/no_proxy.hpp"

#include <algorithm>

#include "config/text.hpp"

namespace connector {
namespace {

/// An entry without its port: "host:port" and "[v6]:port" lose it; a bare IPv6 address has several
/// colons and keeps them.
std::string_view without_port(std::string_view entry) {
  if (entry.starts_with('[')) {
    const auto close = entry.find(']');
    return close == std::string_view::npos ? entry : entry.substr(1, close - 1);
  }
  const auto colon = entry.find(':');
  if (colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos) {
    return entry.substr(0, colon);
  }
  return entry;
}

}  // namespace

NoProxy NoProxy::parse(std::string_view list) {
  NoProxy no_proxy;
  for (std::string_view entry : text::split_list(list)) {
    if (entry.starts_with("*.")) entry.remove_prefix(1);  // "*.example.com" as ".example.com"
    while (entry.starts_with('.')) entry.remove_prefix(1);
    entry = without_port(entry);
    while (entry.ends_with('.')) entry.remove_suffix(1);
    if (!entry.empty()) no_proxy.entries_.push_back(text::to_lower(entry));
  }
  return no_proxy;
}

bool NoProxy::matches(std::string_view host) const {
  std::string name = text::to_lower(host);
  while (name.ends_with('.')) name.pop_back();  // "example.com." is example.com
  return std::any_of(entries_.begin(), entries_.end(), [&name](const std::string& entry) {
    if (entry == "*" || name == entry) return true;
    return name.size() > entry.size() && name.ends_with(entry) && name[name.size() - entry.size() - 1] == '.';
  });
}

std::string NoProxy::describe() const {
  std::string text;
  for (const std::string& entry : entries_) {
    if (!text.empty()) text += ',';
    text += entry;
  }
  return text;
}

}  // namespace connector
