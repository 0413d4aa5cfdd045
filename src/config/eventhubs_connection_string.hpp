#pragma once
// EVENT_HUB_CONNECTION_STRING parsing, following the rules of Microsoft's Event Hubs SDKs.
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace connector {

/// Parses `Endpoint=sb://host[:port]/;SharedAccessKeyName=…;SharedAccessKey=…[;EntityPath=…]` (or
/// `SharedAccessSignature=SharedAccessSignature sr=…` instead of the key pair) as the SDKs do: `;`-separated
/// `Key=Value` segments, keys case-insensitive, both sides trimmed, values may contain '=', empty segments
/// and unknown keys ignored. `UseDevelopmentEmulator=true` means plain AMQP, default port 5672.
/// Throws std::invalid_argument naming the wrong part; the message never contains the key or signature.
EventHubsConnectionString parse_eventhubs_connection_string(std::string_view connection_string);

/// The connection string with its key or signature replaced by "***", for --check-config and logs.
std::string describe_connection_string(const EventHubsConnectionString& parts);

}  // namespace connector
