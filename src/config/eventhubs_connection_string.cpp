#include "config/eventhubs_connection_string.hpp"

#include <charconv>
#include <optional>
#include <stdexcept>

#include "config/host_port.hpp"
#include "config/text.hpp"

namespace connector {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument(what); }

constexpr std::uint16_t kAmqpsPort = 5671;
constexpr std::uint16_t kAmqpPort = 5672;

/// Reads the host and port of an endpoint. Like the Java SDK, a missing scheme means sb://; like the .NET
/// SDK, the scheme does not choose the transport (UseDevelopmentEmulator does) and the path is ignored.
HostPort parse_endpoint(std::string_view value) {
  auto rest = value;
  if (const auto scheme_end = value.find("://"); scheme_end != std::string_view::npos) {
    const auto scheme = text::to_lower(value.substr(0, scheme_end));
    if (scheme != "sb" && scheme != "amqps" && scheme != "amqp" && scheme != "https" && scheme != "http") {
      fail("the Endpoint's scheme \"" + scheme + "\" is not sb://, amqps:// or https://");
    }
    rest = value.substr(scheme_end + 3);
  }
  rest = rest.substr(0, rest.find_first_of("/?#"));
  auto endpoint = split_host_port(rest, "the Endpoint's");
  if (endpoint.host.empty())
    fail("the Endpoint has no host (expected sb://<namespace>.servicebus.windows.net/)");
  return endpoint;
}

/// What the segments gave, before the checks that need all of them.
struct Segments {
  EventHubsConnectionString parts;
  std::optional<HostPort> endpoint;
  bool has_key_name = false;
  bool has_key = false;
  bool has_signature = false;
};

/// Calls `use(key, value)` for each "Key=Value" segment, trimmed. Segments are named by position, never
/// shown: a broken one may hold the key.
template <typename Use>
void for_each_segment(std::string_view connection_string, Use use) {
  std::size_t segment_number = 0;
  while (!connection_string.empty()) {
    const auto semicolon = connection_string.find(';');
    const auto segment = connection_string.substr(0, semicolon);
    connection_string =
        semicolon == std::string_view::npos ? std::string_view{} : connection_string.substr(semicolon + 1);
    ++segment_number;
    if (text::trim(segment).empty()) continue;  // "…;;…" and a trailing ';' are fine, as in the SDKs

    const auto eq = segment.find('=');
    if (eq == std::string_view::npos) fail("segment " + std::to_string(segment_number) + " is not Key=Value");
    const auto key = text::trim(segment.substr(0, eq));
    if (key.empty()) fail("segment " + std::to_string(segment_number) + " has no key before '='");
    use(key, text::trim(segment.substr(eq + 1)));
  }
}

/// Takes one segment into `s`. Other keys (TransportType, …) are ignored, as the JS and .NET SDKs do.
void take_segment(Segments& s, std::string_view key, std::string_view value) {
  const auto known = [&](std::string_view name) {
    if (!text::iequals(key, name)) return false;
    // The .NET SDK treats an empty value as a malformed connection string.
    if (value.empty()) fail(std::string(name) + " is empty");
    return true;
  };
  if (known("Endpoint")) {
    s.parts.endpoint = std::string(value);
    s.endpoint = parse_endpoint(value);
  } else if (known("SharedAccessKeyName")) {
    s.parts.shared_access_key_name = std::string(value);
    s.has_key_name = true;
  } else if (known("SharedAccessKey")) {
    s.parts.shared_access_key = std::string(value);
    s.has_key = true;
  } else if (known("SharedAccessSignature")) {
    // The Java SDK accepts only a complete token here.
    if (!text::to_lower(value).starts_with("sharedaccesssignature ")) {
      fail("SharedAccessSignature must be a whole token, starting with \"SharedAccessSignature sr=\"");
    }
    s.parts.shared_access_signature = std::string(value);
    s.has_signature = true;
  } else if (known("EntityPath")) {
    s.parts.entity_path = std::string(value);
  } else if (known("UseDevelopmentEmulator")) {
    if (!text::iequals(value, "true") && !text::iequals(value, "false")) {
      fail("UseDevelopmentEmulator is \"" + std::string(value) + "\"; use true or false");
    }
    s.parts.use_development_emulator = text::iequals(value, "true");
  }
}

/// A key with its name, or a ready signature: one of them, whole.
void check_credentials(const Segments& s) {
  if (s.has_signature && (s.has_key || s.has_key_name)) {
    fail("it has both SharedAccessSignature and SharedAccessKey/SharedAccessKeyName; use one of them");
  }
  if (s.has_signature) return;
  if (s.has_key && !s.has_key_name) fail("it has a SharedAccessKey but no SharedAccessKeyName");
  if (s.has_key_name && !s.has_key) fail("it has a SharedAccessKeyName but no SharedAccessKey");
  if (!s.has_key) fail("it has neither SharedAccessKeyName + SharedAccessKey nor SharedAccessSignature");
}

/// AMQPS on 5671, or plain AMQP on 5672 for the emulator, unless the Endpoint names a port.
std::uint16_t port_of(const EventHubsConnectionString& parts, const HostPort& endpoint) {
  if (!parts.use_development_emulator) return endpoint.port.value_or(kAmqpsPort);
  const auto port = endpoint.port.value_or(kAmqpPort);
  // The emulator speaks plain AMQP; 5671 is the TLS port, which the C++ SDK refuses here too.
  if (port == kAmqpsPort) {
    fail("UseDevelopmentEmulator=true uses plain AMQP, but the Endpoint's port is 5671 (AMQPS); use 5672");
  }
  return port;
}

}  // namespace

EventHubsConnectionString parse_eventhubs_connection_string(std::string_view connection_string) {
  Segments s;
  for_each_segment(connection_string,
                   [&s](std::string_view key, std::string_view value) { take_segment(s, key, value); });
  if (!s.endpoint)
    fail("the Endpoint is missing (expected Endpoint=sb://<namespace>.servicebus.windows.net/)");
  check_credentials(s);
  s.parts.host = s.endpoint->host;
  s.parts.port = port_of(s.parts, *s.endpoint);
  s.parts.port_explicit = s.endpoint->port.has_value();
  return s.parts;
}

std::string describe_connection_string(const EventHubsConnectionString& parts) {
  std::string text = "Endpoint=" + parts.endpoint;
  if (!parts.shared_access_signature.empty()) {
    text += ";SharedAccessSignature=***";
  } else {
    text += ";SharedAccessKeyName=" + parts.shared_access_key_name + ";SharedAccessKey=***";
  }
  if (!parts.entity_path.empty()) text += ";EntityPath=" + parts.entity_path;
  if (parts.use_development_emulator) text += ";UseDevelopmentEmulator=true";
  return text;
}

}  // namespace connector
