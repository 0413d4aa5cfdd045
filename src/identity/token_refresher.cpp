#include "identity/token_refresher.hpp"

#include <pthread.h>

#include <random>

#include "common/backoff.hpp"
#include "common/errors.hpp"
#include "observability/logger.hpp"

namespace connector {
namespace {
using std::chrono::system_clock;
// A failed refresh is retried well before the token runs out (the margin is minutes), so the retries may
// be frequent; 30 s keeps a broken identity endpoint from being hammered while leaving several tries.
constexpr std::chrono::milliseconds kRetryCap = std::chrono::seconds(30);

long long seconds_between(system_clock::time_point from, system_clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::seconds>(to - from).count();
}
}  // namespace

system_clock::time_point refresh_time(system_clock::time_point issued, system_clock::time_point expiry,
                                      std::chrono::milliseconds margin) {
  if (expiry <= issued) return issued;
  const auto halfway = issued + (expiry - issued) / 2;
  const auto before_margin = expiry - margin;
  return before_margin > issued ? std::min(halfway, before_margin) : halfway;
}

TokenRefresher::TokenRefresher(std::shared_ptr<const TokenCredential> credential, std::string scope,
                               std::chrono::milliseconds margin, std::chrono::milliseconds retry_base)
    : credential_(std::move(credential)),
      scope_(std::move(scope)),
      margin_(margin),
      retry_base_(retry_base) {}

TokenRefresher::~TokenRefresher() { stop(); }

void TokenRefresher::start() {
  const auto issued = system_clock::now();
  AccessToken token = credential_->get_token(scope_);
  {
    std::lock_guard lock(mutex_);
    snapshot_ = TokenSnapshot{std::move(token.token), token.expires_on, snapshot_.generation + 1,
                              refresh_time(issued, token.expires_on, margin_)};
    issued_ = issued;
  }
  logger().info("entra_token_acquired",
                {{"scope", scope_}, {"expires_in_s", seconds_between(issued, token.expires_on)}});
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

void TokenRefresher::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  wake_.notify_all();
  thread_.join();
}

TokenSnapshot TokenRefresher::current() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

void TokenRefresher::run(std::stop_token stop) {
  pthread_setname_np(pthread_self(), "token-refresh");
  Backoff backoff({retry_base_, kRetryCap}, std::random_device{}());
  std::unique_lock lock(mutex_);
  auto next = snapshot_.refresh_at;
  for (;;) {
    wake_.wait_until(lock, stop, next, [] { return false; });
    if (stop.stop_requested()) return;
    const auto old_expiry = snapshot_.expires_on;
    lock.unlock();
    const auto issued = system_clock::now();
    try {
      AccessToken token = credential_->get_token(scope_);
      lock.lock();
      next = refresh_time(issued, token.expires_on, margin_);
      snapshot_ = TokenSnapshot{std::move(token.token), token.expires_on, snapshot_.generation + 1, next};
      issued_ = issued;
      backoff.reset();
      logger().info("entra_token_refreshed",
                    {{"scope", scope_},
                     {"generation", snapshot_.generation},
                     {"expires_in_s", seconds_between(issued, snapshot_.expires_on)}});
    } catch (const std::exception& e) {
      // The old token stays in use until it expires; after that its users see the service refuse it.
      const auto delay = backoff.next();
      lock.lock();
      next = system_clock::now() + delay;
      snapshot_.refresh_at = next;
      const bool expired = old_expiry <= system_clock::now();
      logger().log(expired ? LogLevel::Error : LogLevel::Warn, "entra_token_refresh_failed",
                   {{"scope", scope_},
                    {"error", e.what()},
                    {"attempt", backoff.attempts()},
                    {"retry_in_ms", delay.count()},
                    {"current_token_expires_in_s", seconds_between(system_clock::now(), old_expiry)}});
    }
  }
}

}  // namespace connector
