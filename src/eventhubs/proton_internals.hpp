#pragma once
// What the Event Hubs sink needs that Proton C++ 0.37 only exposes through its C API (or only with a copy).
#include <cstdint>
#include <optional>
#include <proton/link.hpp>
#include <proton/transfer.hpp>
#include <string>

namespace connector {

/// The max-message-size the peer announced when it attached `link`; nullopt when it announced none (0).
std::optional<std::uint64_t> remote_max_message_size(const proton::link& link);

/// The error condition of a delivery's remote (rejected) outcome: name and description, empty when none.
struct RemoteCondition {
  std::string name;
  std::string description;
};
RemoteCondition remote_rejection(const proton::transfer& transfer);

/// The delivery tag of `transfer` read as a native 64-bit number when it is 8 bytes long (the sink's
/// DeliveryId), and whether it travels on `link`. Read in place: proton::tracker::tag() and sender()
/// copy and reference-count, which shows at one answer per event.
std::optional<std::uint64_t> tag_number_on(const proton::transfer& transfer, const proton::link& link);

}  // namespace connector
