#pragma once
// The few things fake-eventhubs needs that Proton C++ 0.37 has no API for, done with Proton's C API.
#include <cstdint>
#include <string>

#include <proton/connection.hpp>
#include <proton/delivery.hpp>
#include <proton/link.hpp>

namespace connector {

/// Advertises `bytes` as this link's max-message-size; must be called before the link is opened
/// (the value travels in our attach frame). Proton C++ 0.37 has no setter for it.
void set_link_max_message_size(const proton::link& link, std::uint64_t bytes);

/// Rejects and settles `delivery` with an error condition; proton::delivery::reject() cannot carry one.
void reject_with_condition(const proton::delivery& delivery, const std::string& condition,
                           const std::string& description);

/// Closes the connection's socket at once, without an AMQP close frame, as a crashed peer or a
/// network failure would; the client sees a transport error.
void drop_transport(const proton::connection& connection);

/// "host:port" of the peer, for logs; empty when unknown.
std::string remote_address(const proton::connection& connection);

}  // namespace connector
