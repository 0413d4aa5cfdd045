#include "support/redis_cluster.hpp"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <stdexcept>

#include "common/errors.hpp"

namespace connector::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kNodes = 6;
// Long enough that a loaded 2-core machine does not see false failures, short enough that a SIGKILLed
// primary is replaced within a few seconds.
constexpr const char* kNodeTimeoutMs = "2000";
constexpr auto kConvergeTimeout = 60s;

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto end = std::min(text.find(separator, start), text.size());
    if (end > start) parts.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

/// One line of CLUSTER NODES: id, address, flags, master id, …, link state, slot ranges.
struct NodeLine {
  std::vector<std::string> fields;
  bool has_flag(std::string_view flag) const {
    const auto flags = split(fields.at(2), ',');
    return std::find(flags.begin(), flags.end(), flag) != flags.end();
  }
  /// Slot ranges ("0-5460", "7"), without the "[slot->-id]" migration markers.
  std::vector<std::pair<int, int>> slots() const {
    std::vector<std::pair<int, int>> ranges;
    for (std::size_t i = 8; i < fields.size(); ++i) {
      if (fields[i].starts_with('[')) continue;
      const auto dash = fields[i].find('-');
      const int first = std::stoi(fields[i].substr(0, dash));
      ranges.emplace_back(first, dash == std::string::npos ? first : std::stoi(fields[i].substr(dash + 1)));
    }
    return ranges;
  }
};

std::vector<NodeLine> parse_nodes(std::string_view text) {
  std::vector<NodeLine> lines;
  for (const auto& line : split(text, '\n')) {
    NodeLine parsed{split(line, ' ')};
    if (parsed.fields.size() >= 8) lines.push_back(std::move(parsed));
  }
  return lines;
}

void expect_ok(const RedisReply& reply, const std::string& what) {
  if (!reply.is_status() || reply.str() != "OK") throw std::runtime_error(what + " failed: " + reply.describe());
}

std::unique_ptr<RedisServer> start_node() {
  return std::make_unique<RedisServer>(RedisServerOptions{
      .cluster = true, .extra_args = {"--cluster-node-timeout", kNodeTimeoutMs, "--appendonly", "no"}});
}

}  // namespace

RedisCluster::RedisCluster() {
  // One after the other on this thread: a child is SIGKILLed when the thread that forked it ends
  // (PR_SET_PDEATHSIG), and a redis-server answers PING within tens of milliseconds anyway.
  for (std::size_t i = 0; i < kNodes; ++i) nodes_.push_back(start_node());

  std::vector<std::string> args = {"/usr/bin/redis-cli", "--cluster", "create"};
  for (const auto& node : nodes_) args.push_back("127.0.0.1:" + std::to_string(node->port()));
  args.insert(args.end(), {"--cluster-replicas", "1", "--cluster-yes"});
  ChildProcess create(args, dir_.path() / "redis-cli.log");
  if (create.wait(120s) != 0) {
    throw std::runtime_error("redis-cli --cluster create failed. Its output:\n" + create.log());
  }
  wait_until_converged();
}

RedisCluster::~RedisCluster() = default;

std::uint16_t RedisCluster::port(std::size_t node) const { return nodes_.at(node)->port(); }

RedisConnectionOptions RedisCluster::connection_options(std::size_t node) const {
  return nodes_.at(node)->connection_options();
}

RedisReply RedisCluster::command(std::size_t node, const std::vector<std::string_view>& argv) {
  return nodes_.at(node)->command(argv);
}

bool RedisCluster::running(std::size_t node) { return nodes_.at(node)->running(); }

std::string RedisCluster::node_id(std::size_t node) {
  const RedisReply id = command(node, {"CLUSTER", "MYID"});
  if (!id.is_string()) throw std::runtime_error("CLUSTER MYID: " + id.describe());
  return std::string(id.str());
}

std::string RedisCluster::myself_line(std::size_t node) {
  const RedisReply nodes = command(node, {"CLUSTER", "NODES"});
  for (const auto& line : parse_nodes(nodes.str())) {
    if (line.has_flag("myself")) {
      std::string joined;
      for (const auto& field : line.fields) joined += field + " ";
      return joined;
    }
  }
  throw std::runtime_error("CLUSTER NODES of node " + std::to_string(node) + " has no myself line");
}

std::size_t RedisCluster::owner_of_slot(std::uint16_t slot) {
  for (std::size_t node = 0; node < size(); ++node) {
    if (!running(node)) continue;
    const auto line = parse_nodes(myself_line(node)).at(0);
    if (!line.has_flag("master")) continue;
    for (const auto& [first, last] : line.slots()) {
      if (slot >= first && slot <= last) return node;
    }
  }
  throw std::runtime_error("no running primary claims slot " + std::to_string(slot));
}

std::size_t RedisCluster::owner_of_key(std::string_view key) {
  for (std::size_t node = 0; node < size(); ++node) {
    if (!running(node)) continue;
    const RedisReply slot = command(node, {"CLUSTER", "KEYSLOT", key});
    if (!slot.is_integer()) throw std::runtime_error("CLUSTER KEYSLOT: " + slot.describe());
    return owner_of_slot(static_cast<std::uint16_t>(slot.integer()));
  }
  throw std::runtime_error("no running node");
}

std::size_t RedisCluster::replica_of(std::size_t primary) {
  const std::string id = node_id(primary);
  for (std::size_t node = 0; node < size(); ++node) {
    if (node == primary || !running(node)) continue;
    const auto line = parse_nodes(myself_line(node)).at(0);
    if (line.has_flag("slave") && line.fields.at(3) == id) return node;
  }
  throw std::runtime_error("node " + std::to_string(primary) + " has no running replica");
}

std::size_t RedisCluster::other_primary(std::size_t primary) {
  for (std::size_t node = 0; node < size(); ++node) {
    if (node == primary || !running(node)) continue;
    const auto line = parse_nodes(myself_line(node)).at(0);
    if (line.has_flag("master") && !line.slots().empty()) return node;
  }
  throw std::runtime_error("no running primary other than node " + std::to_string(primary));
}

void RedisCluster::failover(std::size_t replica) {
  expect_ok(command(replica, {"CLUSTER", "FAILOVER"}), "CLUSTER FAILOVER on node " + std::to_string(replica));
  if (!wait_until([&] { return parse_nodes(myself_line(replica)).at(0).has_flag("master"); }, kConvergeTimeout)) {
    throw std::runtime_error("node " + std::to_string(replica) + " did not become a primary after CLUSTER FAILOVER");
  }
  wait_until_converged();
}

std::size_t RedisCluster::kill_primary_and_wait_for_promotion(std::size_t primary) {
  const std::size_t replica = replica_of(primary);
  const auto slots = parse_nodes(myself_line(primary)).at(0).slots();
  if (slots.empty()) throw std::runtime_error("node " + std::to_string(primary) + " serves no slot");
  nodes_.at(primary)->kill();
  const bool promoted = wait_until(
      [&] {
        const auto line = parse_nodes(myself_line(replica)).at(0);
        return line.has_flag("master") && line.slots() == slots;
      },
      kConvergeTimeout);
  if (!promoted) throw std::runtime_error("node " + std::to_string(replica) + " did not take over the slots");
  wait_until_converged();
  return replica;
}

void RedisCluster::restart(std::size_t node) {
  nodes_.at(node)->start();
  wait_until_converged();
}

void RedisCluster::begin_slot_migration(std::uint16_t slot, std::size_t from, std::size_t to) {
  const std::string slot_text = std::to_string(slot);
  expect_ok(command(to, {"CLUSTER", "SETSLOT", slot_text, "IMPORTING", node_id(from)}), "SETSLOT IMPORTING");
  expect_ok(command(from, {"CLUSTER", "SETSLOT", slot_text, "MIGRATING", node_id(to)}), "SETSLOT MIGRATING");
}

void RedisCluster::finish_slot_migration(std::uint16_t slot, std::size_t from, std::size_t to) {
  const std::string slot_text = std::to_string(slot);
  const std::string to_port = std::to_string(port(to));
  for (;;) {
    const RedisReply keys = command(from, {"CLUSTER", "GETKEYSINSLOT", slot_text, "100"});
    if (!keys.is_array()) throw std::runtime_error("CLUSTER GETKEYSINSLOT: " + keys.describe());
    if (keys.size() == 0) break;
    std::vector<std::string_view> migrate = {"MIGRATE", "127.0.0.1", to_port, "", "0", "10000", "KEYS"};
    for (std::size_t i = 0; i < keys.size(); ++i) migrate.push_back(keys[i].str());
    expect_ok(command(from, migrate), "MIGRATE of slot " + slot_text);
  }
  const std::string owner = node_id(to);
  // The new owner first, so it never refuses the slot while the old one already points at it.
  expect_ok(command(to, {"CLUSTER", "SETSLOT", slot_text, "NODE", owner}), "SETSLOT NODE on the importer");
  expect_ok(command(from, {"CLUSTER", "SETSLOT", slot_text, "NODE", owner}), "SETSLOT NODE on the migrator");
  wait_until_converged();
}

std::string RedisCluster::view_of(std::size_t node) {
  const RedisReply info = command(node, {"CLUSTER", "INFO"});
  if (info.str().find("cluster_state:ok") == std::string_view::npos) return "cluster_state not ok";
  if (parse_nodes(myself_line(node)).at(0).has_flag("slave")) {
    const RedisReply replication = command(node, {"INFO", "replication"});
    if (replication.str().find("master_link_status:up") == std::string_view::npos) return "replica link down";
  }
  // Roles, failure flags and slots of every node, in one text that all nodes must share.
  std::vector<std::string> lines;
  for (const auto& line : parse_nodes(command(node, {"CLUSTER", "NODES"}).str())) {
    std::ostringstream canonical;
    canonical << line.fields[0] << (line.has_flag("master") ? " master" : " replica")
              << (line.has_flag("fail") ? " fail" : "") << (line.has_flag("fail?") ? " fail?" : "")
              << (line.has_flag("handshake") ? " handshake" : "");
    for (const auto& [first, last] : line.slots()) canonical << " " << first << "-" << last;
    lines.push_back(canonical.str());
  }
  std::sort(lines.begin(), lines.end());
  std::string view;
  for (const auto& line : lines) view += line + "\n";
  return view;
}

void RedisCluster::wait_until_converged() {
  std::string last;
  const bool agreed = wait_until(
      [&] {
        try {
          std::vector<std::string> views;
          for (std::size_t node = 0; node < size(); ++node) {
            if (running(node)) views.push_back(view_of(node));
          }
          last = views.empty() ? "no node running" : views.front();
          return std::all_of(views.begin(), views.end(), [&](const auto& view) {
            return view == views.front() && view.find('\n') != std::string::npos;
          });
        } catch (const ConnectorError& error) {
          last = error.what();
          return false;
        }
      },
      kConvergeTimeout);
  if (!agreed) throw std::runtime_error("the cluster did not converge; last view:\n" + last);
}

}  // namespace connector::testing
