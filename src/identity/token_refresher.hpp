#pragma once
// One scope's token, fetched at startup and replaced well before it expires, on its own thread.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include "identity/credential.hpp"

namespace connector {

/// The newest token of a scope as its users see it; `generation` grows by one with every new token.
struct TokenSnapshot {
  std::string token;  // secret
  std::chrono::system_clock::time_point expires_on;
  std::uint64_t generation = 0;
  std::chrono::system_clock::time_point refresh_at;  // when the next token is due (or the next retry)
};

/// Where RedisConnection and the Event Hubs TokenSource take their tokens from. Thread-safe.
class AccessTokenProvider {
 public:
  virtual ~AccessTokenProvider() = default;
  virtual TokenSnapshot current() const = 0;
};

/// When to replace a token: halfway through its life (as MSAL's refresh_in does), or `margin` before it
/// expires when that is earlier; users always have at least min(margin, lifetime/2) to pick up the new one.
std::chrono::system_clock::time_point refresh_time(std::chrono::system_clock::time_point issued,
                                                   std::chrono::system_clock::time_point expiry,
                                                   std::chrono::milliseconds margin);

/// Keeps the token of one scope fresh: start() gets the first one (or throws), then a thread named
/// "token-refresh" replaces it at refresh_time(), retrying failures with capped back-off while the
/// old token stays in use. current() may be called from any thread.
class TokenRefresher final : public AccessTokenProvider {
 public:
  TokenRefresher(std::shared_ptr<const TokenCredential> credential, std::string scope,
                 std::chrono::milliseconds margin,
                 std::chrono::milliseconds retry_base = std::chrono::seconds(1));
  ~TokenRefresher() override;
  TokenRefresher(const TokenRefresher&) = delete;
  TokenRefresher& operator=(const TokenRefresher&) = delete;

  /// Gets the first token; throws IdentityError when the credential fails.
  void start();
  void stop();
  TokenSnapshot current() const override;

 private:
  void run(std::stop_token stop);

  const std::shared_ptr<const TokenCredential> credential_;
  const std::string scope_;
  const std::chrono::milliseconds margin_;
  const std::chrono::milliseconds retry_base_;
  mutable std::mutex mutex_;  // guards snapshot_ and issued_
  std::condition_variable_any wake_;
  TokenSnapshot snapshot_;
  std::chrono::system_clock::time_point issued_;
  std::jthread thread_;  // last: stopped and joined before the members above go
};

}  // namespace connector
