#include "redis/cluster_slots.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "common/errors.hpp"

namespace connector {
namespace {

// Replies captured byte for byte from a redis-server 7.0.15 cluster of 3 primaries (ports 42101-42103)
// and 3 replicas (42104-42106), before and after SIGKILLing the primary on 42101.
std::string captured(std::string_view name) {
  std::ifstream in(std::string(SOURCE_DIR) + "/tests/unit/data/redis_cluster/" + std::string(name) + ".resp",
                   std::ios::binary);
  EXPECT_TRUE(in) << "missing test data " << name;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// Parses RESP with hiredis's reader, as RedisConnection does with bytes from a socket; nullopt when the
// bytes are not one complete reply.
std::optional<RedisReply> parse(std::string_view resp) {
  redisReader* reader = redisReaderCreate();
  void* raw = nullptr;
  const bool ok = redisReaderFeed(reader, resp.data(), resp.size()) == REDIS_OK &&
                  redisReaderGetReply(reader, &raw) == REDIS_OK && raw != nullptr;
  redisReaderFree(reader);
  if (!ok) return std::nullopt;
  return RedisReply(static_cast<redisReply*>(raw));
}

RedisReply parsed(std::string_view resp) {
  auto reply = parse(resp);
  EXPECT_TRUE(reply.has_value()) << "incomplete RESP in the test";
  return reply ? std::move(*reply) : RedisReply{};
}

RedisEndpoint asked(std::string host = "127.0.0.1", bool tls = false) {
  RedisEndpoint endpoint;
  endpoint.host = std::move(host);
  endpoint.port = 42101;
  endpoint.scheme = tls ? RedisEndpoint::Scheme::Tls : RedisEndpoint::Scheme::Tcp;
  return endpoint;
}

std::string primary_of(const SlotMap& map, std::uint16_t slot) {
  const ClusterNode* node = map.primary_for(slot);
  return node == nullptr ? "unserved" : node->describe();
}

// The three primaries as redis-cli --cluster create split the slots.
void expect_initial_layout(const SlotMap& map) {
  EXPECT_EQ(map.unserved_slots(), 0u);
  ASSERT_EQ(map.primaries().size(), 3u);
  EXPECT_EQ(primary_of(map, 0), "127.0.0.1:42101");
  EXPECT_EQ(primary_of(map, 5460), "127.0.0.1:42101");
  EXPECT_EQ(primary_of(map, 5461), "127.0.0.1:42102");
  EXPECT_EQ(primary_of(map, 10922), "127.0.0.1:42102");
  EXPECT_EQ(primary_of(map, 10923), "127.0.0.1:42103");
  EXPECT_EQ(primary_of(map, 16383), "127.0.0.1:42103");
  // The same server answered SET foo with "-MOVED 12182 127.0.0.1:42103".
  EXPECT_EQ(primary_of(map, key_slot("foo")), "127.0.0.1:42103");
}

TEST(cluster_slots_test, key_slot_matches_cluster_keyslot_of_a_real_server) {
  // Each value is CLUSTER KEYSLOT's answer from redis-server 7.0.15; "123456789" is CRC16/XMODEM's check
  // value 0x31C3.
  EXPECT_EQ(key_slot("123456789"), 12739);
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot("telemetry:events"), 631);
  EXPECT_EQ(key_slot("ünïcode"), 6051);
  EXPECT_EQ(key_slot(std::string_view("a\0b\xff", 4)), 7390);
  EXPECT_EQ(key_slot(""), 0);
}

TEST(cluster_slots_test, key_slot_hashes_only_a_non_empty_hash_tag) {
  EXPECT_EQ(key_slot("{user1000}.following"), 3443);
  EXPECT_EQ(key_slot("{user1000}.followers"), 3443);
  EXPECT_EQ(key_slot("{telemetry}:events"), 5926);
  EXPECT_EQ(key_slot("foo{bar}{zap}"), 5061);  // the first tag: "bar"
  EXPECT_EQ(key_slot("foo{{bar}}zap"), 4015);  // "{bar": up to the first '}'
  EXPECT_EQ(key_slot("foo{}{bar}"), 8363);     // an empty tag hashes the whole key
  EXPECT_EQ(key_slot("{}"), 15257);
  EXPECT_EQ(key_slot("{"), 4092);
  EXPECT_EQ(key_slot("}"), 12090);
  EXPECT_EQ(key_slot("a{b"), 13340);
}

TEST(cluster_slots_test, cluster_shards_and_cluster_slots_give_the_same_map) {
  expect_initial_layout(SlotMap::from_shards(parsed(captured("shards")), asked()));
  expect_initial_layout(SlotMap::from_slots(parsed(captured("slots")), asked()));
  const SlotMap map = SlotMap::from_shards(parsed(captured("shards")), asked());
  EXPECT_EQ(map.primary_for(0)->id, "e7659c86b75065e42946fd6eb86a00e0c338f0c6");
  EXPECT_TRUE(map.primary_for(0)->online);
  EXPECT_EQ(map.primary_for(0)->hostname, "");
  EXPECT_THROW(map.primary_for(16384), std::out_of_range);
}

TEST(cluster_slots_test, the_announced_hostname_is_kept_apart_from_the_preferred_endpoint) {
  // cluster-announce-hostname set on every node, cluster-preferred-endpoint-type still ip.
  for (const SlotMap& map : {SlotMap::from_shards(parsed(captured("shards_hostname")), asked()),
                             SlotMap::from_slots(parsed(captured("slots_hostname")), asked())}) {
    expect_initial_layout(map);
    EXPECT_EQ(map.primary_for(0)->hostname, "node-1.cluster.test");
    EXPECT_EQ(map.primary_for(16383)->hostname, "node-3.cluster.test");
  }
  // cluster-preferred-endpoint-type hostname on the node asked: the hostname is where to connect.
  const SlotMap map = SlotMap::from_slots(parsed(captured("slots_pref_hostname")), asked());
  EXPECT_EQ(primary_of(map, 0), "node-1.cluster.test:42101");
  EXPECT_EQ(primary_of(map, 12182), "node-3.cluster.test:42103");
}

TEST(cluster_slots_test, an_unknown_endpoint_means_the_host_that_was_asked) {
  // cluster-preferred-endpoint-type unknown-endpoint: CLUSTER SLOTS sends nil for every endpoint.
  const SlotMap map = SlotMap::from_slots(parsed(captured("slots_unknown_endpoint")), asked("cache.example"));
  EXPECT_EQ(primary_of(map, 0), "cache.example:42101");
  EXPECT_EQ(primary_of(map, 16383), "cache.example:42103");
  // A lone node that knows no IP of its own: an empty endpoint (SHARDS), nil (SLOTS), "?" (hostname
  // preferred, none announced).
  for (const SlotMap& lone : {SlotMap::from_shards(parsed(captured("shards_single_unknown_endpoint")), asked("h")),
                              SlotMap::from_shards(parsed(captured("shards_single_hostname")), asked("h")),
                              SlotMap::from_slots(parsed(captured("slots_single_unknown_endpoint")), asked("h"))}) {
    EXPECT_EQ(primary_of(lone, 0), "h:42120");
    EXPECT_EQ(primary_of(lone, 16383), "h:42120");
  }
}

TEST(cluster_slots_test, after_a_failover_the_promoted_replica_serves_the_slots) {
  // The SIGKILLed primary stays listed as a failed "master" in a shard of its own, without slots.
  for (const SlotMap& map : {SlotMap::from_shards(parsed(captured("shards_after_failover")), asked()),
                             SlotMap::from_slots(parsed(captured("slots_after_failover")), asked())}) {
    EXPECT_EQ(map.unserved_slots(), 0u);
    EXPECT_EQ(map.primaries().size(), 3u);
    EXPECT_EQ(primary_of(map, 0), "127.0.0.1:42105");
    EXPECT_EQ(primary_of(map, 5460), "127.0.0.1:42105");
    EXPECT_EQ(primary_of(map, 5461), "127.0.0.1:42102");
    EXPECT_TRUE(map.primary_for(0)->online);
  }
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

TEST(cluster_slots_test, tls_connections_take_the_tls_port) {
  // With tls-cluster yes a node announces "port" (plain, when one is open) and "tls-port".
  const std::string tls_only = replace_all(captured("shards"), "$4\r\nport\r\n", "$8\r\ntls-port\r\n");
  const SlotMap map = SlotMap::from_shards(parsed(tls_only), asked("localhost", true));
  EXPECT_EQ(primary_of(map, 0), "127.0.0.1:42101");
  try {
    SlotMap::from_shards(parsed(tls_only), asked());
    FAIL() << "no error for a TLS-only node over plain TCP";
  } catch (const RedisStreamError& error) {
    EXPECT_STREQ(error.what(),
                 "Unreadable CLUSTER SHARDS reply from redis://127.0.0.1:42101/0: shard 1: node "
                 "a3958eaed4c7568ff5d40cd61f92252e7b44888b announces no port (it listens on TLS only: use rediss://)");
  }
  EXPECT_THROW(SlotMap::from_shards(parsed(captured("shards")), asked("localhost", true)), RedisStreamError);
}

// --- malformed replies ------------------------------------------------------------------------------

std::string bulk(std::string_view text) { return "$" + std::to_string(text.size()) + "\r\n" + std::string(text) + "\r\n"; }
std::string integer(long long value) { return ":" + std::to_string(value) + "\r\n"; }
std::string array(std::initializer_list<std::string> items) {
  std::string out = "*" + std::to_string(items.size()) + "\r\n";
  for (const auto& item : items) out += item;
  return out;
}
std::string shards_node(std::string_view id, std::string_view role, long long port) {
  return array({bulk("id"), bulk(id), bulk("port"), integer(port), bulk("ip"), bulk("10.0.0.1"), bulk("endpoint"),
                bulk("10.0.0.1"), bulk("role"), bulk(role), bulk("health"), bulk("online")});
}
std::string shard(std::string slots, std::string nodes) {
  return array({bulk("slots"), std::move(slots), bulk("nodes"), std::move(nodes)});
}

std::string shards_error(const std::string& resp) {
  try {
    SlotMap::from_shards(parsed(resp), asked());
  } catch (const RedisStreamError& error) {
    return error.what();
  }
  return "no error";
}

std::string slots_error(const std::string& resp) {
  try {
    SlotMap::from_slots(parsed(resp), asked());
  } catch (const RedisStreamError& error) {
    return error.what();
  }
  return "no error";
}

TEST(cluster_slots_test, malformed_cluster_shards_replies_get_a_clear_error) {
  const std::string prefix = "Unreadable CLUSTER SHARDS reply from redis://127.0.0.1:42101/0: ";
  const std::string primary = array({shards_node("a", "master", 7000)});
  EXPECT_EQ(shards_error("-ERR nope\r\n"), prefix + "it is error reply: ERR nope, not an array");
  EXPECT_EQ(shards_error(array({integer(1)})), prefix + "shard 1: it is integer 1, not name/value pairs");
  EXPECT_EQ(shards_error(array({shard(array({integer(0)}), primary)})),
            prefix + "shard 1: 'slots' is array of 1, not pairs of slot numbers");
  EXPECT_EQ(shards_error(array({array({bulk("nodes"), primary})})),
            prefix + "shard 1: 'slots' is nil, not pairs of slot numbers");
  EXPECT_EQ(shards_error(array({shard(array({integer(0), integer(16384)}), primary)})),
            prefix + "shard 1: slot integer 16384 is not a number from 0 to 16383");
  EXPECT_EQ(shards_error(array({shard(array({integer(9), integer(3)}), primary)})),
            prefix + "shard 1: the range 9-3 is reversed");
  EXPECT_EQ(shards_error(array({shard(array({bulk("x"), integer(3)}), primary)})),
            prefix + "shard 1: slot string of 1 bytes: \"x\" is not a number from 0 to 16383");
  EXPECT_EQ(shards_error(array({shard(array({integer(0), integer(1)}), array({shards_node("r", "replica", 7001)}))})),
            prefix + "shard 1: it serves slots but lists no primary (role master)");
  EXPECT_EQ(shards_error(array({shard(array({integer(0), integer(1)}),
                                      array({shards_node("a", "master", 7000), shards_node("b", "master", 7001)}))})),
            prefix + "shard 1: it lists two primaries (role master)");
  EXPECT_EQ(shards_error(array({shard(array({integer(0), integer(1)}), array({shards_node("a", "master", 0)}))})),
            prefix + "shard 1: node a's port integer 0 is not a port number");
  EXPECT_EQ(shards_error(array({shard(array({integer(0), integer(1)}), array({integer(5)}))})),
            prefix + "shard 1: node 1 is integer 5, not name/value pairs");
  EXPECT_EQ(shards_error(array({shard(array({integer(0), integer(1)}), bulk("n"))})),
            prefix + "shard 1: 'nodes' is string of 1 bytes: \"n\", not an array");
  // Two shards claiming one slot.
  EXPECT_EQ(shards_error(array({shard(array({integer(0), integer(10)}), primary),
                                shard(array({integer(10), integer(20)}), array({shards_node("b", "master", 7001)}))})),
            prefix + "shard 2: slot 10 is claimed by both 10.0.0.1:7000 and 10.0.0.1:7001");
  // Slots sent as numeric text are read (some 7.0 releases did), a shard without slots is skipped.
  const SlotMap map = SlotMap::from_shards(
      parsed(array({shard(array({bulk("0"), bulk("99")}), primary), shard(array({}), array({integer(1)}))})), asked());
  EXPECT_EQ(primary_of(map, 99), "10.0.0.1:7000");
  EXPECT_EQ(primary_of(map, 100), "unserved");
  EXPECT_EQ(map.unserved_slots(), kClusterSlotCount - 100);
}

TEST(cluster_slots_test, malformed_cluster_slots_replies_get_a_clear_error) {
  const std::string prefix = "Unreadable CLUSTER SLOTS reply from redis://127.0.0.1:42101/0: ";
  const std::string node = array({bulk("10.0.0.1"), integer(7000), bulk("a")});
  EXPECT_EQ(slots_error(bulk("x")), prefix + "it is string of 1 bytes: \"x\", not an array");
  EXPECT_EQ(slots_error(array({array({integer(0), integer(1)})})),
            prefix + "range 1: it is array of 2, not [first, last, primary, …]");
  EXPECT_EQ(slots_error(array({array({integer(0), integer(1), integer(3)})})),
            prefix + "range 1: the primary is integer 3, not [endpoint, port, …]");
  EXPECT_EQ(slots_error(array({array({integer(0), integer(1), array({integer(1), integer(7000)})})})),
            prefix + "range 1: the primary's endpoint is integer 1");
  EXPECT_EQ(slots_error(array({array({integer(0), integer(1), array({bulk("h"), integer(70000)})})})),
            prefix + "range 1: the primary's port integer 70000 is not a port number");
  EXPECT_EQ(slots_error(array({array({integer(-1), integer(1), node})})),
            prefix + "range 1: slot integer -1 is not a number from 0 to 16383");
  // One primary serving two ranges is one primary.
  const SlotMap map = SlotMap::from_slots(
      parsed(array({array({integer(0), integer(9), node}), array({integer(20), integer(29), node})})), asked());
  EXPECT_EQ(map.primaries().size(), 1u);
  EXPECT_EQ(primary_of(map, 25), "10.0.0.1:7000");
  EXPECT_EQ(primary_of(map, 15), "unserved");
}

TEST(cluster_slots_test, corrupted_captured_replies_never_crash) {
  // Every single-byte corruption of the real replies that still parses as RESP either gives a map or
  // a RedisStreamError.
  for (const char* name : {"slots_hostname", "shards_after_failover"}) {
    const std::string original = captured(name);
    for (std::size_t i = 0; i < original.size(); ++i) {
      for (const char replacement : {'9', '*', '$'}) {
        std::string corrupted = original;
        corrupted[i] = replacement;
        const auto reply = parse(corrupted);
        if (!reply) continue;
        try {
          (void)SlotMap::from_shards(*reply, asked());
        } catch (const RedisStreamError&) {
        }
        try {
          (void)SlotMap::from_slots(*reply, asked());
        } catch (const RedisStreamError&) {
        }
      }
    }
  }
}

// --- MOVED and ASK ----------------------------------------------------------------------------------

std::string redirect_text(std::string_view text, std::string_view asked_host = "10.9.9.9") {
  const auto redirect = parse_redirect(text, asked_host);
  if (!redirect) return "none";
  return std::string(redirect->kind == ClusterRedirect::Kind::Moved ? "MOVED " : "ASK ") +
         std::to_string(redirect->slot) + " " + redirect->node.describe();
}

std::string redirect_error(std::string_view text) {
  try {
    parse_redirect(text, "h");
  } catch (const RedisStreamError& error) {
    return error.what();
  }
  return "no error";
}

TEST(cluster_slots_test, reads_moved_and_ask_as_redis_sends_them) {
  // The first four texts are a real server's replies (the last with unknown-endpoint, which leaves the
  // host out: the host asked).
  EXPECT_EQ(redirect_text("MOVED 12182 127.0.0.1:42103"), "MOVED 12182 127.0.0.1:42103");
  EXPECT_EQ(redirect_text("-ASK 12182 127.0.0.1:42102"), "ASK 12182 127.0.0.1:42102");
  EXPECT_EQ(redirect_text("MOVED 12182 node-3.cluster.test:42103"), "MOVED 12182 node-3.cluster.test:42103");
  EXPECT_EQ(redirect_text("MOVED 12182 :42103"), "MOVED 12182 10.9.9.9:42103");
  // Redis writes IPv6 addresses without brackets; the port follows the last ':'.
  EXPECT_EQ(redirect_text("MOVED 3999 ::1:7000"), "MOVED 3999 [::1]:7000");
  EXPECT_EQ(redirect_text("ASK 0 2001:db8::7:6380"), "ASK 0 [2001:db8::7]:6380");
  EXPECT_EQ(redirect_text("MOVED 16383 [fe80::1]:7000"), "MOVED 16383 [fe80::1]:7000");
  const auto ask = parse_redirect("ASK 5 h:1", "x");
  ASSERT_TRUE(ask);
  EXPECT_EQ(ask->node.host, "h");
  EXPECT_EQ(ask->node.port, 1);
}

TEST(cluster_slots_test, other_errors_are_not_redirects) {
  EXPECT_EQ(redirect_text("ERR unknown command"), "none");
  EXPECT_EQ(redirect_text("NOGROUP No such key"), "none");
  EXPECT_EQ(redirect_text("MOVEDX 1 h:1"), "none");
  EXPECT_EQ(redirect_text("TRYAGAIN Multiple keys request during rehashing of slot"), "none");
  EXPECT_EQ(redirect_text(""), "none");
}

TEST(cluster_slots_test, malformed_redirects_get_a_clear_error) {
  EXPECT_EQ(redirect_error("MOVED "), "Unreadable redirection from Redis Cluster (no slot number from 0 to 16383): ");
  EXPECT_EQ(redirect_error("MOVED x h:1"),
            "Unreadable redirection from Redis Cluster (no slot number from 0 to 16383): x h:1");
  EXPECT_EQ(redirect_error("ASK 16384 h:1"),
            "Unreadable redirection from Redis Cluster (no slot number from 0 to 16383): 16384 h:1");
  EXPECT_EQ(redirect_error("MOVED 12"), "Unreadable redirection from Redis Cluster (no slot number from 0 to 16383): 12");
  EXPECT_EQ(redirect_error("MOVED 12 host"), "Unreadable redirection from Redis Cluster (no host:port): 12 host");
  EXPECT_EQ(redirect_error("MOVED 12 host:0"),
            "Unreadable redirection from Redis Cluster (no port number from 1 to 65535): 12 host:0");
  EXPECT_EQ(redirect_error("MOVED 12 host:65536"),
            "Unreadable redirection from Redis Cluster (no port number from 1 to 65535): 12 host:65536");
  EXPECT_EQ(redirect_error("ASK 12 host:1x"),
            "Unreadable redirection from Redis Cluster (no port number from 1 to 65535): 12 host:1x");
  EXPECT_EQ(redirect_error("ASK 12 a b:1"),
            "Unreadable redirection from Redis Cluster (the host has a character hosts cannot have): 12 a b:1");
}

}  // namespace
}  // namespace connector
