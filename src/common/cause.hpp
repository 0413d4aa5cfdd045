#pragma once
// Why an event was not accepted, as a value the output fills where it knows it (an AMQP condition, an
// errno), so that metrics never read it back out of a human sentence. observability/metrics.hpp maps
// it to the metric labels, in one place.
#include <cstdint>

namespace connector {

/// Why an event was retried or dead-lettered.
enum class Cause : std::uint8_t {
  None,           // accepted, or nothing more specific is known
  ServerBusy,     // the output throttles (com.microsoft:server-busy)
  Timeout,        // no answer in time (com.microsoft:timeout, ETIMEDOUT)
  Connection,     // the connection or link to the output ended (amqp:connection:*, detach-forced)
  Rejected,       // the output refused or released this event for another reason
  TooLarge,       // the event exceeds the output's size limit
  Unencodable,    // the entry cannot become an event (encoding, a missing field, an unusable entry ID)
  MaxDeliveries,  // delivered more often than MAX_DELIVERY_ATTEMPTS allows
  Io,             // a local read or write failed (disk full, read-only, the directory replaced)
};

}  // namespace connector
