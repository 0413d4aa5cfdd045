#pragma once
// Event → AMQP message bytes, the way Event Hubs consumers expect them (README "Event mapping").
#include <cstddef>
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

/// Writes into `out` (replacing its content, keeping its capacity) the AMQP 1.0 encoding of `event`
/// as one message: the partition key annotation unless `with_partition_key` is false (a partition
/// target excludes it), a properties section with `message-id` = the entry ID and `content-type` when
/// set, the event's properties as application properties — AMQP string when the value is valid UTF-8,
/// else AMQP binary with the exact bytes; a repeated name keeps its last value, since an AMQP map may
/// not repeat a key — and the body as one data section.
///
/// Encoded here rather than through proton::message: building, then encoding, a proton::message per
/// event was most of the sink's CPU; these bytes go to the link as they are.
void encode_event(const Event& event, bool with_partition_key, std::string& out);

/// The same encoding without the body's bytes: `out` ends with the data section's header, and
/// `out + event.body` is what encode_event writes. The sink sends the two parts as one delivery, so
/// the body is not copied once more on its way to the link.
void encode_event_head(const Event& event, bool with_partition_key, std::string& out);

/// Event Hubs batches (message format 0x80013700, as the SDKs' EventDataBatch sends them): one AMQP
/// message, the envelope, whose body is a sequence of data sections, each holding one event exactly as
/// encode_event writes it. The envelope carries the batch's partition key annotation (every event in it
/// has the same key), and nothing else: each event keeps its own properties.
///
/// Writes into `out` the envelope's sections before its first data section.
void encode_batch_envelope_head(std::string_view partition_key, bool with_partition_key, std::string& out);
/// Writes into `out` the header of the data section holding one encoded event of `event_size` bytes.
void encode_batch_section_header(std::size_t event_size, std::string& out);
/// How many bytes that header takes.
std::size_t batch_section_overhead(std::size_t event_size);

}  // namespace connector
