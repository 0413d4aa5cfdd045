#pragma once
// The connector's Entra ID tokens: one credential from the settings, one refresher per scope in use.
#include <memory>

#include "config/config.hpp"
#include "identity/token_refresher.hpp"

namespace connector {

inline constexpr const char* kEventHubsScope = "https://eventhubs.azure.net/.default";
inline constexpr const char* kRedisScope = "https://redis.azure.com/.default";

/// Refreshers for the scopes the configuration uses; null where a service does not use Entra ID.
struct EntraTokens {
  std::shared_ptr<TokenRefresher> eventhubs;
  std::shared_ptr<TokenRefresher> redis;
};

/// Logs `credential_selected`, gets the first token of every scope in use and starts refreshing them.
/// Throws IdentityError (flow, endpoint, the service's error; never a secret) when a token cannot be had.
EntraTokens start_entra_tokens(const Config& config);

}  // namespace connector
