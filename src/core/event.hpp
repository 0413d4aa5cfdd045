#pragma once
// What flows through the pipeline: stream entries in, events out.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "core/stream_fields.hpp"

namespace connector {

/// One entry as read from the stream. `deleted` marks a pending ID whose entry was trimmed away.
struct StreamEntry {
  std::string id;
  StreamFields fields;
  bool deleted = false;
  unsigned deliveries = 1;  // times Redis delivered it (XPENDING), when known
};

/// An entry encoded for the output (README "Event mapping").
struct Event {
  std::string entry_id;      // the Redis entry ID; also the `redis-id` property
  std::string body;          // raw bytes
  // "application/json" for the default mapping, empty for a raw body field. A view of text that lives as
  // long as the program (a literal): one allocation per event less.
  std::string_view content_type;
  bool body_is_json = false;
  // Application properties, in order. The default mapping has two (redis-stream, redis-id): kept inline,
  // so an event needs no allocation for them.
  boost::container::small_vector<std::pair<std::string, std::string>, 2> properties;
  std::string partition_key;  // empty: none
};

/// What the pipeline hands to a sink in one call.
using Batch = std::vector<Event>;

}  // namespace connector
