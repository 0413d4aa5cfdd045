#include "identity/entra_tokens.hpp"

#include "identity/credential.hpp"
#include "observability/logger.hpp"

namespace connector {

EntraTokens start_entra_tokens(const Config& config) {
  EntraTokens tokens;
  if (!config.entra) return tokens;
  const EntraSettings& settings = *config.entra;
  std::shared_ptr<const TokenCredential> credential = make_credential(settings);
  logger().info("credential_selected", {{"credential", settings.describe()},
                                        {"eventhubs", config.eventhubs_entra},
                                        {"redis", config.redis_entra}});
  if (config.eventhubs_entra) {
    tokens.eventhubs = std::make_shared<TokenRefresher>(credential, kEventHubsScope, settings.refresh_margin);
    tokens.eventhubs->start();
  }
  if (config.redis_entra) {
    tokens.redis = std::make_shared<TokenRefresher>(credential, kRedisScope, settings.refresh_margin);
    tokens.redis->start();
  }
  return tokens;
}

}  // namespace connector
