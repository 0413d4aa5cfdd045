#pragma once
// The few things fake-eventhubs needs that Proton C++ 0.37 has no API for, done with Proton's C API.
#include <cstdint>
#include <proton/connection.hpp>
#include <proton/delivery.hpp>
#include <proton/link.hpp>
#include <string>
#include <string_view>
#include <vector>

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

/// The bytes of the delivery Proton C++ decoded last on this thread: inside on_message, the encoded
/// message being handled. Proton C++ 0.37 hands over only the decoded message, and that loses all but
/// the last data section of a batch (format 0x80013700) envelope, which the Azure SDKs send.
std::string_view last_received_message_bytes();

/// True when `encoded` is one whole AMQP message: message sections (header to footer) and nothing else.
/// Proton C++'s message::decode is no test of that: it takes bytes that are no message without a word.
bool is_encoded_message(std::string_view encoded);

/// The data sections of a batch envelope, each an encoded AMQP message; empty when `encoded` is not one.
/// Proton 0.37 does not expose a delivery's message-format, so the envelope is recognized by its shape:
/// two or more data sections, or one data section and no application-properties or non-empty
/// properties section around it, whose payload itself decodes as an AMQP message.
std::vector<std::string> batch_envelope_sections(std::string_view encoded);

/// "host:port" of the peer, for logs; empty when unknown.
std::string remote_address(const proton::connection& connection);

}  // namespace connector
