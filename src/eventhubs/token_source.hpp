#pragma once
// Where the CBS tokens come from: signed here from SharedAccessKey, or a ready SharedAccessSignature.
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "identity/token_refresher.hpp"

namespace connector {

/// A token and the moment the service stops honouring it.
struct SasToken {
  std::string value;  // secret: never logged
  std::chrono::system_clock::time_point expiry;
};

/// Makes tokens for an audience: SAS tokens from the connection string, or the newest Microsoft Entra
/// ID token of a provider. Immutable after construction, so usable from any thread.
class TokenSource {
 public:
  /// Entra ID: token_for() hands out `provider`'s current token (refreshed on its own thread), whatever
  /// the audience; the CBS put-token names the audience.
  explicit TokenSource(std::shared_ptr<const AccessTokenProvider> provider);

  /// Throws EventHubsError when the connection string has neither a key nor a well-formed
  /// SharedAccessSignature (the message never contains either).
  TokenSource(const EventHubsConnectionString& connection, std::chrono::seconds lifetime);

  /// False for a given SharedAccessSignature: it cannot be renewed, only warned about before it expires.
  bool renewable() const noexcept { return given_token_.empty(); }

  /// A key-signed token for `audience` valid `lifetime` from `now`, the given token as it is, or the
  /// provider's newest token.
  SasToken token_for(std::string_view audience, std::chrono::system_clock::time_point now) const;

  /// When to put a token again after putting one (at `issued`) that expires at `expiry`: renewal_time()
  /// for SAS; for Entra ID as soon as the provider holds a newer token, else when it is due to get one
  /// (at least a second on, so a refresh in progress is not chased tick by tick).
  std::chrono::system_clock::time_point renewal_time(std::chrono::system_clock::time_point issued,
                                                     std::chrono::system_clock::time_point expiry) const;

  /// The put-token type: kSasTokenType, or kJwtTokenType for Entra ID tokens.
  const std::string& token_type() const noexcept;

 private:
  std::string key_name_;
  std::string key_;          // secret
  std::string given_token_;  // secret
  std::chrono::system_clock::time_point given_expiry_{};
  std::chrono::seconds lifetime_{0};
  std::shared_ptr<const AccessTokenProvider> provider_;  // Entra ID; null for SAS
};

/// When to put a fresh token: at 80% of its lifetime, or 10 minutes before it expires if that is
/// earlier (the SDKs renew 7–10 minutes ahead; 80% keeps short test lifetimes renewing in time).
std::chrono::system_clock::time_point renewal_time(std::chrono::system_clock::time_point issued,
                                                   std::chrono::system_clock::time_point expiry);

/// When to warn that a token that cannot be renewed is about to expire: 10 minutes before (or `now`).
std::chrono::system_clock::time_point expiry_warning_time(std::chrono::system_clock::time_point now,
                                                          std::chrono::system_clock::time_point expiry);

}  // namespace connector
