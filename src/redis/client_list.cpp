#include "redis/client_list.hpp"

#include <charconv>

#include "common/errors.hpp"

namespace connector {

std::vector<RedisClientInfo> parse_client_list(std::string_view text) {
  std::vector<RedisClientInfo> clients;
  while (!text.empty()) {
    const auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    RedisClientInfo client;
    // Names cannot hold spaces (CLIENT SETNAME refuses them), so fields split on ' '.
    while (!line.empty()) {
      const auto space = line.find(' ');
      const std::string_view field = line.substr(0, space);
      line = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
      const auto equals = field.find('=');
      if (equals == std::string_view::npos) continue;
      const std::string_view key = field.substr(0, equals);
      const std::string_view value = field.substr(equals + 1);
      if (key == "id") {
        client.id = value;
      } else if (key == "addr") {
        client.address = value;
      } else if (key == "name") {
        client.name = value;
      } else if (key == "age") {
        std::from_chars(value.data(), value.data() + value.size(), client.age_seconds);
      }
    }
    clients.push_back(std::move(client));
  }
  return clients;
}

std::vector<RedisClientInfo> clients_named(RedisConnection& connection, std::string_view name) {
  connection.append({"CLIENT", "ID"});
  connection.append({"CLIENT", "LIST", "TYPE", "normal"});
  const RedisReply own_id = connection.read_reply();
  const RedisReply list = connection.read_reply();
  if (list.is_error()) {
    throw RedisStreamError("CLIENT LIST refused by Redis at " + connection.endpoint().describe() + ": " +
                           std::string(list.str()));
  }
  if (!list.is_string() || !own_id.is_integer()) {
    throw RedisStreamError("Unexpected reply to CLIENT ID / CLIENT LIST from Redis at " +
                           connection.endpoint().describe() + ": " + own_id.describe() + ", " +
                           list.describe());
  }
  const std::string own = std::to_string(own_id.integer());
  std::vector<RedisClientInfo> named;
  for (auto& client : parse_client_list(list.str())) {
    const std::string_view client_name = client.name;
    // A connector names each of its connections "<consumer>:<role>" (reader, acker...).
    const bool same =
        client_name == name || (client_name.size() > name.size() && client_name.starts_with(name) &&
                                client_name[name.size()] == ':');
    if (same && client.id != own) named.push_back(std::move(client));
  }
  return named;
}

}  // namespace connector
