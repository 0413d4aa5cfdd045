#include "eventhubs/token_source.hpp"

#include "common/errors.hpp"
#include "eventhubs/cbs_client.hpp"
#include "eventhubs/sas_token.hpp"

namespace connector {

namespace {
constexpr std::chrono::minutes kRenewMargin{10};
}

TokenSource::TokenSource(const EventHubsConnectionString& connection, std::chrono::seconds lifetime)
    : key_name_(connection.shared_access_key_name), key_(connection.shared_access_key), lifetime_(lifetime) {
  if (!connection.shared_access_key.empty()) return;
  if (connection.shared_access_signature.empty()) {
    throw EventHubsError(
        "the Event Hubs connection string has neither SharedAccessKey nor SharedAccessSignature; "
        "check EVENT_HUB_CONNECTION_STRING");
  }
  SasTokenParts parts;
  if (!parse_sas_token(connection.shared_access_signature, parts)) {
    throw EventHubsError(
        "the SharedAccessSignature of the Event Hubs connection string is not of the form "
        "'SharedAccessSignature sr=…&sig=…&se=…&skn=…'; check EVENT_HUB_CONNECTION_STRING");
  }
  given_token_ = connection.shared_access_signature;
  given_expiry_ = std::chrono::system_clock::time_point(std::chrono::seconds(parts.expiry));
}

TokenSource::TokenSource(std::shared_ptr<const AccessTokenProvider> provider)
    : provider_(std::move(provider)) {}

const std::string& TokenSource::token_type() const noexcept {
  return provider_ ? kJwtTokenType : kSasTokenType;
}

SasToken TokenSource::token_for(std::string_view audience, std::chrono::system_clock::time_point now) const {
  if (provider_) {
    TokenSnapshot snapshot = provider_->current();
    return SasToken{std::move(snapshot.token), snapshot.expires_on};
  }
  if (!given_token_.empty()) return SasToken{given_token_, given_expiry_};
  // Whole seconds: `se` has second resolution, and the expiry we plan renewals from must be the one sent.
  const auto expiry = std::chrono::time_point_cast<std::chrono::seconds>(now + lifetime_);
  return SasToken{make_sas_token(audience, key_name_, key_, expiry), expiry};
}

std::chrono::system_clock::time_point TokenSource::renewal_time(
    std::chrono::system_clock::time_point issued, std::chrono::system_clock::time_point expiry) const {
  if (!provider_) return connector::renewal_time(issued, expiry);
  const TokenSnapshot newest = provider_->current();
  if (newest.expires_on != expiry) return issued;  // a newer token than the one just put
  return std::max(newest.refresh_at, issued + std::chrono::seconds(1));
}

std::chrono::system_clock::time_point renewal_time(std::chrono::system_clock::time_point issued,
                                                   std::chrono::system_clock::time_point expiry) {
  if (expiry <= issued) return issued;
  const auto lifetime = expiry - issued;
  const auto at_80_percent = issued + lifetime * 4 / 5;
  // For tokens shorter than the margin, "10 minutes before" lies before issuing: 80% alone applies.
  const auto before_margin = expiry - kRenewMargin;
  return before_margin > issued ? std::min(at_80_percent, before_margin) : at_80_percent;
}

std::chrono::system_clock::time_point expiry_warning_time(std::chrono::system_clock::time_point now,
                                                          std::chrono::system_clock::time_point expiry) {
  return std::max(now, expiry - kRenewMargin);
}

}  // namespace connector
