#pragma once
// NO_PROXY: the hosts reached directly although HTTPS_PROXY names a proxy.
#include <string>
#include <string_view>
#include <vector>

namespace connector {

/// A NO_PROXY list as curl reads it: `*` (every host), or host names and domain suffixes, with or
/// without a leading dot (`example.com` and `.example.com` both take example.com and every name below
/// it), compared without regard to case. A port in an entry is ignored; anything else (an IP range)
/// only matches the same text.
class NoProxy {
 public:
  NoProxy() = default;
  /// Never fails: a machine-wide NO_PROXY written for other programs must not stop the connector.
  static NoProxy parse(std::string_view list);

  /// True when `host` is to be reached without the proxy.
  bool matches(std::string_view host) const;
  /// The entries as they are matched (lower-case, no leading dot or port), comma-separated.
  std::string describe() const;

 private:
  std::vector<std::string> entries_;  // lower-case, without a leading dot or port; "*" for every host
};

}  // namespace connector
