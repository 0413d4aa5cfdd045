#pragma once
// Reads CLIENT LIST: which other clients of this Redis use a given client name.
#include <string>
#include <string_view>
#include <vector>

#include "redis/redis_connection.hpp"

namespace connector {

/// One line of CLIENT LIST, the fields an operator needs to find the process behind it.
struct RedisClientInfo {
  std::string id;
  std::string address;  // addr=
  std::string name;
  long long age_seconds = 0;
};

/// Parses CLIENT LIST's text ("id=3 addr=… name=… age=…" one client a line); unknown fields are ignored.
std::vector<RedisClientInfo> parse_client_list(std::string_view text);

/// The clients connected to `connection`'s server named `name` or `name:<role>`, this connection excluded.
/// Throws RedisStreamError when the server refuses CLIENT LIST (an ACL user without +client|list).
std::vector<RedisClientInfo> clients_named(RedisConnection& connection, std::string_view name);

}  // namespace connector
