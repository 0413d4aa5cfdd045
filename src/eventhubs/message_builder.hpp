#pragma once
// Event → AMQP message, the way Event Hubs consumers expect it (DESIGN.md "Sending").
#include <cstddef>
#include <proton/message.hpp>
#include <string>
#include <string_view>

#include "core/event.hpp"

namespace connector {

/// Event Hubs accepts partition keys of at most this many characters.
inline constexpr std::size_t kMaxPartitionKeyLength = 128;

/// The value sent as `x-opt-partition-key` (an AMQP string, so UTF-8): the key itself, or, when it is
/// longer than 128 bytes or not valid UTF-8, the lower-case hex SHA-256 of its bytes (64 characters).
/// Hashing keeps "same key bytes → same partition", which truncation or replacing bad bytes would not.
/// Nothing is lost: the key is a field of the entry, so its bytes also travel in the body (default
/// mapping) or as an application property (MESSAGE_BODY_FIELD).
std::string partition_key_annotation(std::string_view key);

/// Fills `out` (cleared first) from `event`: the body as one AMQP data section, `content_type` when set,
/// `message_id` = the entry ID, the event's properties as application properties — AMQP string when the
/// value is valid UTF-8, else AMQP binary with the exact bytes — and the partition key annotation unless
/// `with_partition_key` is false (a partition target excludes it).
void build_message(const Event& event, bool with_partition_key, proton::message& out);

/// Bytes of the message once encoded.
std::size_t encoded_size(const proton::message& message);

/// A bound that is never below the encoded size of build_message(event); cheap, so that only events
/// near the size limit pay for an exact encoding.
std::size_t encoded_size_upper_bound(const Event& event);

}  // namespace connector
