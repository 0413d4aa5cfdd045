#pragma once
// What the Pipeline needs from Redis on one connection: StreamConsumer is the real one, a test double
// lets the Pipeline's threads run without a redis-server.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/event.hpp"
#include "redis/stream_types.hpp"

namespace connector {

/// One connection's worth of stream and consumer-group commands, with the connection's own lifecycle.
/// Not thread-safe, except interrupt(): one thread uses it. Failures are thrown as StreamConsumer
/// throws them (a RedisError of some kind, ConfigurationError), which the
/// Pipeline meets with its error policy (core/redis_error_policy.hpp).
class StreamSource {
 public:
  virtual ~StreamSource() = default;

  /// Connects (again), resetting any state of the previous connection.
  virtual void connect() = 0;
  virtual bool connected() const = 0;
  virtual void close() = 0;
  /// From any thread: makes a call in progress (a blocking read) fail at once.
  virtual void interrupt() = 0;
  /// The server's address, for log lines.
  virtual std::string describe_endpoint() const = 0;

  virtual RedisVersion check_server() = 0;
  virtual bool ensure_group(std::string_view start_id) = 0;
  virtual const StreamConsumerOptions& options() const noexcept = 0;

  /// See StreamConsumer::read() for the read-ahead contract.
  virtual std::vector<StreamEntry> read(std::string_view id, std::size_t count,
                                        std::optional<std::chrono::milliseconds> block,
                                        const std::function<bool()>& may_read_ahead) = 0;
  virtual bool read_ahead_outstanding() const noexcept = 0;
  virtual std::vector<StreamEntry> take_delivered_read_ahead(std::size_t count) = 0;
  virtual std::vector<StreamEntry> read_own_pending(std::string_view after, std::size_t count) = 0;

  virtual long long ack(const std::vector<std::string_view>& ids) = 0;
  virtual std::vector<std::string> dead_letter(const std::vector<DeadLetter>& entries) = 0;
  virtual ClaimResult claim(std::chrono::milliseconds min_idle, std::string_view cursor, std::size_t count,
                            const std::function<bool(std::string_view)>& skip) = 0;
  virtual void set_delivery_counts(const std::vector<std::pair<std::string, unsigned>>& counts) = 0;
};

}  // namespace connector
