#pragma once
// Percent-encoding for URLs, form bodies and SAS tokens: below every part that speaks to a service, so
// that the identity flows and the Event Hubs tokens share it without depending on each other.
#include <string>
#include <string_view>

namespace connector {

/// Percent-encodes everything but RFC 3986 unreserved characters (A-Z a-z 0-9 - _ . ~), like the SDKs.
std::string url_encode(std::string_view text);
/// Decodes %XX escapes ("+" stays "+"); malformed escapes are kept as they are.
std::string url_decode(std::string_view text);

}  // namespace connector
