#pragma once
// Redis Cluster routing facts: a key's hash slot, which primary serves each slot (from CLUSTER SHARDS
// or CLUSTER SLOTS), and the MOVED/ASK redirections a node answers with while slots move.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "redis/redis_reply.hpp"

namespace connector {

class RedisConnection;

inline constexpr std::size_t kClusterSlotCount = 16384;

/// The hash slot of `key`: CRC16 (XMODEM, as Redis computes it) mod 16384, of the hash tag alone when
/// the key holds a non-empty `{…}` (the first '{' and the first '}' after it).
std::uint16_t key_slot(std::string_view key);

/// A cluster node as the map announces it.
struct ClusterNode {
  std::string id;        // 40 hex characters; may be empty (CLUSTER SLOTS of old servers)
  std::string host;      // where to connect: the node's preferred endpoint (see SlotMap)
  std::uint16_t port = 0;
  std::string hostname;  // the announced hostname (cluster-announce-hostname), the TLS name when set
  bool online = true;    // CLUSTER SHARDS "health"; CLUSTER SLOTS does not tell

  /// "host:port", "[v6]:port" for an IPv6 address.
  std::string describe() const;
};

/// Which primary serves each of the 16 384 slots. Built from one reply; a later refresh builds a new map.
///
/// The host of a node is its preferred endpoint (what MOVED replies name too, so the two agree): the
/// `endpoint` field of CLUSTER SHARDS or the first field of a CLUSTER SLOTS node. An empty or nil
/// endpoint (cluster-preferred-endpoint-type unknown-endpoint) means "the host you asked", and "?"
/// (hostname preferred but none announced) falls back to the node's IP. The announced hostname is kept
/// apart, as the name to verify over TLS.
class SlotMap {
 public:
  /// From a CLUSTER SHARDS reply got from `asked`. Over TLS (`asked` is rediss://) a node's `tls-port`
  /// is used, else its `port`. Throws RedisStreamError describing the first thing it cannot read.
  static SlotMap from_shards(const RedisReplyView& reply, const RedisEndpoint& asked);
  /// From a CLUSTER SLOTS reply got from `asked` (its ports are already those of the asking connection's
  /// kind, TLS or not). Throws RedisStreamError describing the first thing it cannot read.
  static SlotMap from_slots(const RedisReplyView& reply, const RedisEndpoint& asked);

  /// The primary serving `slot` (< 16384), or nullptr when no shard claims it.
  const ClusterNode* primary_for(std::uint16_t slot) const;
  /// Each primary that serves at least one slot, once.
  const std::vector<ClusterNode>& primaries() const { return primaries_; }
  /// Slots no shard claims (0 in a healthy cluster with full coverage).
  std::size_t unserved_slots() const;

 private:
  static constexpr std::uint16_t kUnserved = 0xffff;
  struct SlotRange {
    std::uint16_t first = 0, last = 0;
    ClusterNode primary;
  };
  /// Reads one element of the reply (a shard, a range); throws std::invalid_argument for what it cannot read.
  using ReadElement = std::function<std::vector<SlotRange>(const RedisReplyView&)>;
  /// The map from every element of `reply`; the first unreadable one becomes a RedisStreamError that
  /// names `command`, the server and the element's number.
  static SlotMap read(const RedisReplyView& reply, const RedisEndpoint& asked, std::string_view command,
                      std::string_view element, const ReadElement& read_element);
  /// Gives [first, last] to `primary`; throws std::invalid_argument for a reversed range or a slot
  /// another primary already claimed.
  void assign(std::uint16_t first, std::uint16_t last, const ClusterNode& primary);

  std::vector<ClusterNode> primaries_;
  std::vector<std::uint16_t> owner_ = std::vector<std::uint16_t>(kClusterSlotCount, kUnserved);
};

/// A node's "go elsewhere" answer: MOVED (the slot lives there now: refresh the map) or ASK (send the
/// next command there once, preceded by ASKING, while the slot migrates).
struct ClusterRedirect {
  enum class Kind { Moved, Ask };
  Kind kind = Kind::Moved;
  std::uint16_t slot = 0;
  ClusterNode node;  // host and port only
};

/// Reads "MOVED <slot> <host>:<port>" or "ASK …" (an error reply's text, with or without the leading
/// '-'). IPv6 hosts come unbracketed ("::1:7000": the port follows the last ':'); an empty host means
/// `asked_host`. Returns nullopt for any other error; throws RedisStreamError for a MOVED/ASK text it
/// cannot read.
std::optional<ClusterRedirect> parse_redirect(std::string_view error_text, std::string_view asked_host);

/// Asks `connection`'s node for the map: CLUSTER SHARDS, or CLUSTER SLOTS from a server older than 7.0.
/// Throws ConfigurationError when the node is not a cluster node (cluster mode was asked for a
/// standalone server), RedisStreamError for a refusal or an unreadable map.
SlotMap load_slot_map(RedisConnection& connection);

/// True when `connection`'s server runs with cluster-enabled yes (INFO cluster).
bool is_cluster_node(RedisConnection& connection);

}  // namespace connector
