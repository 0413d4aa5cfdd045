#pragma once
// Every Redis command the connector sends lives here: group creation, reads, acks, claims and
// dead letters.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/cause.hpp"
#include "common/errors.hpp"
#include "core/event.hpp"
#include "core/stream_source.hpp"
#include "redis/redis_connection.hpp"
#include "redis/stream_read_reply.hpp"
#include "redis/stream_types.hpp"

namespace connector {

/// Stream and consumer-group commands over one RedisConnection: the Pipeline's StreamSource. Not
/// thread-safe (interrupt() aside): one per connection. Unexpected replies throw RedisStreamError naming
/// the command; I/O failures throw RedisConnectionError.
class StreamConsumer final : public StreamSource {
 public:
  StreamConsumer(RedisConnection& connection, StreamConsumerOptions options);

  void connect() override { connection_.connect(); }
  bool connected() const override { return connection_.connected(); }
  void close() override { connection_.close(); }
  void interrupt() override { connection_.interrupt(); }
  std::string describe_endpoint() const override { return connection_.endpoint().describe(); }

  /// INFO server → version; throws RedisStreamError below 5.0 (no streams). Remembers it for claim().
  RedisVersion check_server() override;
  /// Creates the group at `start_id` with MKSTREAM unless it exists; true when created. A key of
  /// another type is a ConfigurationError (STREAM_KEY names something that is not a stream).
  bool ensure_group(std::string_view start_id) override;

  /// XREADGROUP … COUNT count [BLOCK ms] STREAMS key id. `id` is ">" (new) or an ID (own pending,
  /// after that ID). A nil result (timeout) is an empty vector. Throws RedisStreamError with code NoGroup on
  /// NOGROUP.
  ///
  /// Read-ahead (">" only): when this batch is full and `may_read_ahead()` agrees — asked at that moment,
  /// so the caller can refuse once it is stopping —, the next XREADGROUP > (without BLOCK) is sent before
  /// this batch is returned, so Redis prepares it while the caller works; the next read(">") takes its
  /// reply, at once and without BLOCK (empty when the read-ahead found nothing). Its entries are
  /// delivered to this consumer from then on: any other command, or a lost connection, leaves them in
  /// this consumer's pending list (read again by read_own_pending(), or claimed by another instance after
  /// its idle time), never lost.
  std::vector<StreamEntry> read(std::string_view id, std::size_t count,
                                std::optional<std::chrono::milliseconds> block,
                                const std::function<bool()>& may_read_ahead = {}) override;
  /// True from a read-ahead's send until the read(">") that takes its reply: that read will not block.
  bool read_ahead_outstanding() const noexcept override { return read_ahead_count_ != 0 && connection_.connected(); }
  /// The entries of the outstanding read-ahead for reads of `count` (none when there is none), sending
  /// nothing new: for a stop, which hands on what Redis already delivered and reads no more.
  std::vector<StreamEntry> take_delivered_read_ahead(std::size_t count) override;
  /// This consumer's pending entries after `after` ("0": from the start), at most `count`, with their
  /// fields and exact delivery counts. Unlike XREADGROUP with an ID, this does not add a delivery:
  /// reading one's own pending list again after a restart is not a failed attempt.
  std::vector<StreamEntry> read_own_pending(std::string_view after, std::size_t count) override;
  /// XACK in groups of at most 1000 IDs, pipelined. Returns how many were still pending.
  long long ack(const std::vector<std::string_view>& ids) override;
  /// Moves each entry to the dead-letter stream (original fields plus dlq-* fields) and acks it only
  /// once its XADD succeeded. Returns, per entry, the failure (empty when it moved).
  std::vector<std::string> dead_letter(const std::vector<DeadLetter>& entries) override;
  /// Claims up to `count` entries idle for at least `min_idle` from any consumer, starting at `cursor`,
  /// without adding to their delivery counts (JUSTID). Entries for which `skip` is true (this
  /// instance's own in flight) are left out.
  ClaimResult claim(std::chrono::milliseconds min_idle, std::string_view cursor, std::size_t count,
                    const std::function<bool(std::string_view)>& skip) override;
  /// Records that `id` has been delivered `deliveries` times (XCLAIM … RETRYCOUNT, JUSTID).
  void set_delivery_counts(const std::vector<std::pair<std::string, unsigned>>& counts) override;

  const StreamConsumerOptions& options() const noexcept override { return options_; }
  const RedisVersion& version() const noexcept { return version_; }

 private:
  struct Pending {
    std::string id;
    unsigned deliveries = 1;
  };
  RedisReply run(const std::vector<std::string_view>& argv, std::string_view what);
  /// The connection, with an outstanding read-ahead's reply read and dropped first (see read()).
  RedisConnection& connection();
  /// Reads the reply of the outstanding read-ahead into read_reply_; true when there was one and it was
  /// sent for a read of `count` (a read-ahead of another size is dropped: its entries stay pending).
  bool take_read_ahead(std::size_t count);
  void send_read_ahead(std::size_t count);
  /// Throws for an error reply or a reply that is not XREADGROUP's in read_reply_.
  void check_read_reply();
  std::vector<std::string_view> read_command(std::string_view id, const std::string& count_text,
                                             const std::string& block_text) const;
  bool group_exists();
  [[noreturn]] void throw_reply_error(std::string_view text, std::string_view what);
  /// "XPENDING on stream 'k': unexpected item array of 3": the one wording for a reply of the wrong shape.
  RedisStreamError unexpected(std::string_view command, std::string_view part, RedisReplyView reply) const;
  ClaimResult claim_with_autoclaim(std::chrono::milliseconds min_idle, std::string_view cursor,
                                   std::size_t count, const std::function<bool(std::string_view)>& skip);
  ClaimResult claim_with_pending(std::chrono::milliseconds min_idle, std::string_view cursor,
                                 std::size_t count, const std::function<bool(std::string_view)>& skip);
  /// XPENDING key group start + count [consumer], extended form.
  std::vector<Pending> pending_page(std::string_view start, std::size_t count, std::string_view consumer,
                                    std::vector<long long>* idle_ms = nullptr);
  /// Exact delivery counts of `ids` (one XPENDING per ID, pipelined); nullopt: no longer pending.
  std::vector<std::optional<unsigned>> delivery_counts(const std::vector<std::string>& ids);
  /// The fields of pending entries (one XRANGE per ID, pipelined); an entry gone from the stream
  /// comes back marked deleted.
  std::vector<StreamEntry> fetch(std::vector<Pending> pending);

  RedisConnection& connection_;
  StreamConsumerOptions options_;
  RedisVersion version_;
  std::size_t read_ahead_count_ = 0;  // COUNT of the read-ahead sent and not yet read; 0: none
  StreamReadReply read_reply_;        // the last XREADGROUP reply, reused for the next
  StreamReadReply range_reply_;       // the XRANGE reply fetch() reads, reused for the next
};

/// The Pipeline's two StreamConsumers, each on its own connection ("<CLIENT_NAME>:reader" and
/// ":acker"), so that acks never wait behind a blocking read. Connects nothing until used.
struct PipelineStreams {
  PipelineStreams(const RedisConnectionOptions& redis, const StreamConsumerOptions& stream);
  PipelineStreams(const PipelineStreams&) = delete;
  PipelineStreams& operator=(const PipelineStreams&) = delete;

  RedisConnection reader_connection;
  StreamConsumer reader;
  RedisConnection acker_connection;
  StreamConsumer acker;
};

/// Parses "redis_version:7.0.15" out of an INFO reply.
std::optional<RedisVersion> parse_redis_version(std::string_view info);

}  // namespace connector
