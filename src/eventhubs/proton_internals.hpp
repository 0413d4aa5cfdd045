#pragma once
// The two facts Event Hubs needs that Proton C++ 0.37 only exposes through its C API.
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

}  // namespace connector
