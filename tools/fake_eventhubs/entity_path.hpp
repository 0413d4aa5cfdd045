#pragma once
// Names of Event Hubs entities as they appear in link addresses and token audiences.
#include <optional>
#include <string>
#include <string_view>

namespace connector {

/// The path of an address or audience, without scheme and host, lower-cased and without a trailing '/':
/// "sb://ns.example/Hub/Partitions/1" → "hub/partitions/1"; "amqps://ns/" → ""; "Hub" → "hub".
std::string normalized_entity_path(std::string_view address_or_audience);

/// True when the authorization path `granted` covers `wanted` ("" covers everything; "hub" covers
/// "hub/partitions/1"; "hub/partitions/1" does not cover "hub").
bool entity_path_covers(std::string_view granted, std::string_view wanted);

/// A sender link's target, split: `<hub>` or `<hub>/Partitions/<id>`.
struct EventTarget {
  std::string hub;                       // as the client spelled it
  std::optional<std::string> partition;  // set for a partition target
};
/// Parses a sender target address; nullopt when it has neither form.
std::optional<EventTarget> parse_event_target(std::string_view address);

/// ASCII case-insensitive equality (hub names are case-insensitive in Event Hubs).
bool iequals(std::string_view a, std::string_view b);

}  // namespace connector
