#include "redis/cluster_slots.hpp"

#include <array>
#include <charconv>
#include <stdexcept>

#include "common/errors.hpp"
#include "redis/redis_connection.hpp"

namespace connector {
namespace {

// CRC16/XMODEM (polynomial 0x1021, initial value 0), the variant Redis Cluster hashes keys with.
constexpr std::array<std::uint16_t, 256> make_crc16_table() {
  std::array<std::uint16_t, 256> table{};
  for (unsigned byte = 0; byte < 256; ++byte) {
    auto crc = static_cast<std::uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = static_cast<std::uint16_t>((crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    table[byte] = crc;
  }
  return table;
}

constexpr auto kCrc16Table = make_crc16_table();

std::uint16_t crc16(std::string_view bytes) {
  std::uint16_t crc = 0;
  for (const char c : bytes) {
    const auto index = static_cast<std::uint8_t>((crc >> 8) ^ static_cast<std::uint8_t>(c));
    crc = static_cast<std::uint16_t>((crc << 8) ^ kCrc16Table[index]);
  }
  return crc;
}

/// An integer reply, or a bulk string holding a decimal number (some 7.0 releases sent slots as text).
std::optional<long long> number_of(const RedisReplyView& value) {
  if (value.is_integer()) return value.integer();
  if (!value.is_string()) return std::nullopt;
  const std::string_view text = value.str();
  long long number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return number;
}

/// The value after `name` in a flat [name, value, name, value…] array; a nil view when absent.
RedisReplyView field(const RedisReplyView& pairs, std::string_view name) {
  for (std::size_t i = 0; i + 1 < pairs.size(); i += 2) {
    if (pairs[i].is_string() && pairs[i].str() == name) return pairs[i + 1];
  }
  return RedisReplyView{};
}

std::string text_field(const RedisReplyView& pairs, std::string_view name) {
  return std::string(field(pairs, name).str());
}

/// Where to connect, from the node's preferred endpoint (see SlotMap in the header).
std::string connect_host(std::string_view endpoint, std::string_view ip, std::string_view asked_host) {
  if (endpoint.empty()) return std::string(asked_host);
  if (endpoint == "?") return std::string(ip.empty() ? asked_host : ip);
  return std::string(endpoint);
}

std::uint16_t checked_port(std::optional<long long> port, const std::string& what) {
  if (!port || *port <= 0 || *port > 65535) throw std::invalid_argument(what + " is not a port number");
  return static_cast<std::uint16_t>(*port);
}

std::uint16_t checked_slot(const RedisReplyView& value) {
  const auto slot = number_of(value);
  if (!slot || *slot < 0 || *slot >= static_cast<long long>(kClusterSlotCount)) {
    throw std::invalid_argument("slot " + value.describe() + " is not a number from 0 to 16383");
  }
  return static_cast<std::uint16_t>(*slot);
}

/// One node of a CLUSTER SHARDS shard.
ClusterNode shards_node(const RedisReplyView& pairs, const RedisEndpoint& asked) {
  ClusterNode node;
  node.id = text_field(pairs, "id");
  node.hostname = text_field(pairs, "hostname");
  node.host = connect_host(field(pairs, "endpoint").str(), field(pairs, "ip").str(), asked.host);
  const bool tls = asked.scheme == RedisEndpoint::Scheme::Tls;
  const char* port_name = tls ? "tls-port" : "port";
  const RedisReplyView port = field(pairs, port_name);
  if (port.is_nil()) {
    throw std::invalid_argument("node " + node.id + " announces no " + port_name +
                                (tls ? " (is tls-cluster on?)" : " (it listens on TLS only: use rediss://)"));
  }
  node.port = checked_port(number_of(port), "node " + node.id + "'s " + port_name + " " + port.describe());
  const RedisReplyView health = field(pairs, "health");
  node.online = health.is_nil() || health.str() == "online";
  return node;
}

/// The primary of one CLUSTER SHARDS shard.
ClusterNode shard_primary(const RedisReplyView& nodes, const RedisEndpoint& asked) {
  if (!nodes.is_array()) throw std::invalid_argument("'nodes' is " + nodes.describe() + ", not an array");
  // Only the primary is read: a replica's odd field must not stop the connector from writing.
  std::optional<std::size_t> primary;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const RedisReplyView node = nodes[i];
    if (!node.is_array() || node.size() % 2 != 0) {
      throw std::invalid_argument("node " + std::to_string(i + 1) + " is " + node.describe() +
                                  ", not name/value pairs");
    }
    if (field(node, "role").str() != "master") continue;
    if (primary) throw std::invalid_argument("it lists two primaries (role master)");
    primary = i;
  }
  if (!primary) throw std::invalid_argument("it serves slots but lists no primary (role master)");
  return shards_node(nodes[*primary], asked);
}

/// The primary of one CLUSTER SLOTS entry: [endpoint, port, id, {hostname, ip…}].
ClusterNode slots_node(const RedisReplyView& entry, const RedisEndpoint& asked) {
  if (!entry.is_array() || entry.size() < 2) {
    throw std::invalid_argument("the primary is " + entry.describe() + ", not [endpoint, port, …]");
  }
  const RedisReplyView metadata = entry[3];
  ClusterNode node;
  node.id = std::string(entry[2].str());
  node.hostname = text_field(metadata, "hostname");
  if (!entry[0].is_nil() && !entry[0].is_string()) {
    throw std::invalid_argument("the primary's endpoint is " + entry[0].describe());
  }
  node.host = connect_host(entry[0].str(), field(metadata, "ip").str(), asked.host);
  node.port = checked_port(number_of(entry[1]), "the primary's port " + entry[1].describe());
  return node;
}

[[noreturn]] void unreadable(std::string_view command, const RedisEndpoint& asked, const std::string& where,
                             const std::exception& error) {
  throw RedisStreamError("Unreadable " + std::string(command) + " reply from " + asked.describe() + ": " + where +
                         error.what());
}

bool is_ipv6(std::string_view host) { return host.find(':') != std::string_view::npos; }

}  // namespace

std::uint16_t key_slot(std::string_view key) {
  const auto open = key.find('{');
  if (open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return static_cast<std::uint16_t>(crc16(key) & (kClusterSlotCount - 1));
}

std::string ClusterNode::describe() const {
  const std::string port_text = std::to_string(port);
  return is_ipv6(host) ? "[" + host + "]:" + port_text : host + ":" + port_text;
}

SlotMap SlotMap::read(const RedisReplyView& reply, const RedisEndpoint& asked, std::string_view command,
                      std::string_view element, const ReadElement& read_element) {
  if (!reply.is_array()) {
    unreadable(command, asked, "", std::invalid_argument("it is " + reply.describe() + ", not an array"));
  }
  SlotMap map;
  for (std::size_t i = 0; i < reply.size(); ++i) {
    try {
      for (const auto& range : read_element(reply[i])) map.assign(range.first, range.last, range.primary);
    } catch (const std::invalid_argument& error) {
      unreadable(command, asked, std::string(element) + " " + std::to_string(i + 1) + ": ", error);
    }
  }
  return map;
}

SlotMap SlotMap::from_shards(const RedisReplyView& reply, const RedisEndpoint& asked) {
  return read(reply, asked, "CLUSTER SHARDS", "shard", [&](const RedisReplyView& shard) {
    if (!shard.is_array() || shard.size() % 2 != 0) {
      throw std::invalid_argument("it is " + shard.describe() + ", not name/value pairs");
    }
    const RedisReplyView slots = field(shard, "slots");
    if (!slots.is_array() || slots.size() % 2 != 0) {
      throw std::invalid_argument("'slots' is " + slots.describe() + ", not pairs of slot numbers");
    }
    std::vector<SlotRange> ranges;
    if (slots.size() == 0) return ranges;  // a failed primary replaced by its replica keeps a shard of its own
    const ClusterNode primary = shard_primary(field(shard, "nodes"), asked);
    for (std::size_t j = 0; j < slots.size(); j += 2) {
      ranges.push_back({checked_slot(slots[j]), checked_slot(slots[j + 1]), primary});
    }
    return ranges;
  });
}

SlotMap SlotMap::from_slots(const RedisReplyView& reply, const RedisEndpoint& asked) {
  return read(reply, asked, "CLUSTER SLOTS", "range", [&](const RedisReplyView& range) {
    if (!range.is_array() || range.size() < 3) {
      throw std::invalid_argument("it is " + range.describe() + ", not [first, last, primary, …]");
    }
    return std::vector<SlotRange>{{checked_slot(range[0]), checked_slot(range[1]), slots_node(range[2], asked)}};
  });
}

void SlotMap::assign(std::uint16_t first, std::uint16_t last, const ClusterNode& primary) {
  if (first > last) {
    throw std::invalid_argument("the range " + std::to_string(first) + "-" + std::to_string(last) + " is reversed");
  }
  std::size_t index = 0;
  while (index < primaries_.size() &&
         !(primaries_[index].id == primary.id && primaries_[index].describe() == primary.describe())) {
    ++index;
  }
  if (index == primaries_.size()) primaries_.push_back(primary);
  for (std::size_t slot = first; slot <= last; ++slot) {
    if (owner_[slot] != kUnserved && owner_[slot] != index) {
      throw std::invalid_argument("slot " + std::to_string(slot) + " is claimed by both " +
                                  primaries_[owner_[slot]].describe() + " and " + primary.describe());
    }
    owner_[slot] = static_cast<std::uint16_t>(index);
  }
}

const ClusterNode* SlotMap::primary_for(std::uint16_t slot) const {
  if (slot >= kClusterSlotCount) {
    throw std::out_of_range("slot " + std::to_string(slot) + " is not a number from 0 to 16383");
  }
  return owner_[slot] == kUnserved ? nullptr : &primaries_[owner_[slot]];
}

std::size_t SlotMap::unserved_slots() const {
  std::size_t count = 0;
  for (const auto owner : owner_) count += owner == kUnserved ? 1 : 0;
  return count;
}

std::optional<ClusterRedirect> parse_redirect(std::string_view text, std::string_view asked_host) {
  if (text.starts_with('-')) text.remove_prefix(1);
  ClusterRedirect redirect;
  if (text.starts_with("MOVED ")) {
    redirect.kind = ClusterRedirect::Kind::Moved;
    text.remove_prefix(6);
  } else if (text.starts_with("ASK ")) {
    redirect.kind = ClusterRedirect::Kind::Ask;
    text.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const auto fail = [&](const std::string& why) -> RedisStreamError {
    return RedisStreamError("Unreadable redirection from Redis Cluster (" + why + "): " +
                            std::string(text.substr(0, 200)));
  };
  const auto space = text.find(' ');
  const std::string_view slot_text = text.substr(0, space);
  unsigned slot = 0;
  const auto [slot_end, slot_ec] = std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), slot);
  if (space == std::string_view::npos || slot_text.empty() || slot_ec != std::errc{} ||
      slot_end != slot_text.data() + slot_text.size() || slot >= kClusterSlotCount) {
    throw fail("no slot number from 0 to 16383");
  }
  redirect.slot = static_cast<std::uint16_t>(slot);
  std::string_view address = text.substr(space + 1);
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos) throw fail("no host:port");
  std::string_view host = address.substr(0, colon);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  if (host.find_first_of(" \t[]@/") != std::string_view::npos) throw fail("the host has a character hosts cannot have");
  const std::string_view port_text = address.substr(colon + 1);
  unsigned port = 0;
  const auto [port_end, port_ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || port_ec != std::errc{} || port_end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    throw fail("no port number from 1 to 65535");
  }
  redirect.node.host = std::string(host.empty() ? asked_host : host);
  redirect.node.port = static_cast<std::uint16_t>(port);
  return redirect;
}

SlotMap load_slot_map(RedisConnection& connection) {
  const RedisEndpoint& asked = connection.endpoint();
  RedisReply shards = connection.command({"CLUSTER", "SHARDS"});
  if (!shards.is_error()) return SlotMap::from_shards(shards, asked);
  const std::string_view refusal = shards.str();
  if (refusal.find("cluster support disabled") != std::string_view::npos) {
    throw ConfigurationError({"Redis at " + asked.describe() +
                              " is not a cluster node (cluster-enabled no): use a redis:// URL without cluster "
                              "mode, or point it at a node of the cluster"});
  }
  // CLUSTER SHARDS is new in 7.0; older servers only know CLUSTER SLOTS.
  if (refusal.find("nknown subcommand") == std::string_view::npos) {
    throw RedisStreamError("CLUSTER SHARDS refused by Redis at " + asked.describe() + ": " + shards.describe());
  }
  RedisReply slots = connection.command({"CLUSTER", "SLOTS"});
  if (slots.is_error()) {
    throw RedisStreamError("CLUSTER SLOTS refused by Redis at " + asked.describe() + ": " + slots.describe());
  }
  return SlotMap::from_slots(slots, asked);
}

bool is_cluster_node(RedisConnection& connection) {
  const RedisReply info = connection.command({"INFO", "cluster"});
  if (!info.is_string()) {
    throw RedisStreamError("INFO cluster refused by Redis at " + connection.endpoint().describe() + ": " +
                           info.describe());
  }
  return info.str().find("cluster_enabled:1") != std::string_view::npos;
}

}  // namespace connector
