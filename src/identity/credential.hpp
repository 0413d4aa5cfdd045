#pragma once
// azure-identity's credentials for a daemon: client secret, workload identity, managed identity, each
// asking Microsoft Entra ID for a token the way the Azure SDKs do (README "Authentication").
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "identity/http_client.hpp"

namespace connector {

/// An access token and the moment it stops being honoured.
struct AccessToken {
  std::string token;  // secret: never logged
  std::chrono::system_clock::time_point expires_on;
};

/// Reads a token endpoint's JSON answer: `access_token` plus `expires_on` (epoch seconds, a number or a
/// string, as managed identity sends it) or else `expires_in` (seconds from `now`, number or string).
/// Throws std::runtime_error saying what is missing; the message never holds the token.
AccessToken parse_token_response(std::string_view body, std::chrono::system_clock::time_point now);

/// "HTTP 400: invalid_client: AADSTS7000215: …" for an error answer (error / error_description, or
/// the status alone when the body is not the OAuth error shape).
std::string describe_error_response(int status, std::string_view body);

/// Gets tokens for a scope; thread-safe.
class TokenCredential {
 public:
  virtual ~TokenCredential() = default;
  /// One request to the token endpoint; throws IdentityError naming the credential, the endpoint and
  /// the cause (the service's error and AADSTS code when it answered).
  virtual AccessToken get_token(const std::string& scope) const = 0;
  /// The credential and its settings, for logs (never a secret).
  virtual std::string describe() const = 0;
};

/// The credential the settings select (EntraSettings::kind()), talking through `http`.
std::unique_ptr<TokenCredential> make_credential(
    const EntraSettings& settings, std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace connector
