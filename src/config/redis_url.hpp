#pragma once
// REDIS_URL parsing: redis://, rediss:// (TLS) and unix:// URLs, as node-redis users write them.
#include <string_view>

#include "config/config.hpp"

namespace connector {

/// Parses `redis://[user[:pass]@]host[:port][/db]`, `rediss://…` (TLS; default port 6379 too) and
/// `unix://[user[:pass]@]/path/to.sock[?db=N]`. Hosts may be IPv6 in brackets; user and password are
/// percent-decoded; a `db` query parameter is accepted on every scheme, other parameters are ignored.
/// Throws std::invalid_argument naming the wrong part; the message never contains the password.
RedisEndpoint parse_redis_url(std::string_view url);

}  // namespace connector
