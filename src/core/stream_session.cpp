#include "core/stream_session.hpp"

#include <fmt/format.h>

#include <thread>

#include "common/errors.hpp"
#include "observability/logger.hpp"

namespace connector {

void StreamSession::connect_at_startup(int attempts, std::chrono::milliseconds pause) {
  std::string last_error;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    try {
      source_.connect();
      const RedisVersion version = source_.check_server();
      if (std::string_view(role_) == "reader") {
        const bool created = source_.ensure_group(source_.options().group_start_id);
        logger().info(
            "redis_connected",
            {{"address", source_.describe_endpoint()},
             {"redis_version", fmt::format("{}.{}.{}", version.major, version.minor, version.patch)},
             {"stream", source_.options().stream_key},
             {"group", source_.options().group},
             {"consumer", source_.options().consumer},
             {"group_created", created}});
      }
      return;
    } catch (const RedisError& error) {
      // What the policy reconnects after is retried here too: a lost socket, or a node that no longer
      // serves the stream (MOVED, READONLY) while a failover or a migration settles.
      if (redis_error_action(error.kind(), error.code()) != RedisErrorAction::Reconnect) throw;
      last_error = error.what();
      source_.close();
      logger().warn("redis_connect_failed",
                    {{"role", role_}, {"attempt", attempt}, {"of", attempts}, {"error", last_error}});
      if (attempt < attempts) std::this_thread::sleep_for(pause);
    }
  }
  throw RedisConnectionError(fmt::format("Failed to connect to Redis at {} after {} attempts: {}",
                                         source_.describe_endpoint(), attempts, last_error));
}

void StreamSession::reconnect() {
  source_.close();
  source_.connect();
  source_.check_server();
  recreate_lost_group("the group did not exist when reconnecting");
  reconnects_.inc();
  logger().info("redis_reconnected", {{"role", role_}, {"address", source_.describe_endpoint()}});
}

// The one place that recreates a lost group, on either thread: after NOGROUP, after a blocking read
// answered UNBLOCKED (stream deleted), and after a reconnect to a Redis that lost it. GROUP_START_ID
// ("$" by default) would skip what the stream still holds; from "0", everything the lost group had
// not acked is delivered (with what it had acked again: at least once).
void StreamSession::recreate_lost_group(std::string_view cause) {
  if (!source_.ensure_group(kRecreatedGroupStartId)) return;  // it exists, or another instance recreated it
  logger().warn("consumer_group_lost",
                {{"role", role_},
                 {"stream", source_.options().stream_key},
                 {"group", source_.options().group},
                 {"cause", cause},
                 {"resumed_from", kRecreatedGroupStartId},
                 {"note",
                  "group recreated at the oldest entry the stream holds; entries it had acked are "
                  "delivered again"}});
}

std::optional<RedisFailure> StreamSession::recover_lost_group(std::string_view cause) {
  auto failure = try_redis([&] { recreate_lost_group(cause); });
  if (failure && failure->action == RedisErrorAction::Reconnect) source_.close();
  return failure;
}

ClaimPass StreamSession::claim_page(std::chrono::milliseconds min_idle, const std::string& cursor,
                                    std::size_t count, const std::unordered_set<std::string_view>& own) {
  ClaimPass pass;
  pass.failure = try_redis([&] {
    ensure_connected();
    pass.result =
        source_.claim(min_idle, cursor, count, [&own](std::string_view id) { return own.count(id) != 0; });
    if (!pass.result.deleted_ids.empty()) {
      source_.ack({pass.result.deleted_ids.begin(), pass.result.deleted_ids.end()});
      logger().warn("pending_entries_deleted", {{"count", pass.result.deleted_ids.size()},
                                                {"first", pass.result.deleted_ids.front()},
                                                {"action", "acked: they were trimmed from the stream"}});
    }
  });
  if (!pass.failure) return pass;
  if (pass.failure->action == RedisErrorAction::Reconnect) source_.close();
  // A failure to recreate is reported with the first one; the reader meets the lost group too.
  if (pass.failure->action == RedisErrorAction::RecreateGroup) recover_lost_group(pass.failure->message);
  return pass;
}

std::optional<RedisFailure> StreamSession::ack(const std::vector<std::string_view>& ids) {
  auto failure = try_redis([&] {
    ensure_connected();
    source_.ack(ids);
  });
  if (!failure) return std::nullopt;
  if (failure->action == RedisErrorAction::Reconnect) source_.close();
  if (failure->action == RedisErrorAction::RecreateGroup) {
    const auto again = recover_lost_group(failure->message);
    if (again && again->action == RedisErrorAction::Reconnect) failure->action = RedisErrorAction::Reconnect;
  }
  return failure;
}

DeadLetterOutcome StreamSession::write_dead_letters(const std::vector<DeadLetter>& work) {
  DeadLetterOutcome outcome;
  auto failure = try_redis([&] { outcome.failures = source_.dead_letter(work); });
  if (failure && failure->action == RedisErrorAction::Reconnect) {
    source_.close();
    outcome.lost_connection = std::move(failure);
    return outcome;
  }
  // A refused XACK after the XADDs: all are written again later.
  if (failure) outcome.failures.assign(work.size(), failure->message);
  log_dead_letters(work, outcome.failures);
  return outcome;
}

// A count that is not recorded errs towards more attempts, never towards a premature dead letter: a
// failure of any kind is only logged.
void StreamSession::record_delivery_counts(const std::vector<std::pair<std::string, unsigned>>& counts) {
  if (const auto failure = try_redis([&] { source_.set_delivery_counts(counts); })) {
    if (failure->action == RedisErrorAction::Reconnect) source_.close();
    logger().debug("delivery_counts_not_recorded", {{"count", counts.size()}, {"error", failure->message}});
  }
}

void StreamSession::log_dead_letters(const std::vector<DeadLetter>& work,
                                     const std::vector<std::string>& failures) const {
  const StreamConsumerOptions& options = source_.options();
  for (std::size_t i = 0; i < work.size(); ++i) {
    const StreamEntry& entry = *work[i].entry;
    if (failures[i].empty()) {
      logger().warn("entry_dead_lettered", {{"entry", entry.id},
                                            {"stream", options.stream_key},
                                            {"dead_letter_stream", options.dead_letter_stream},
                                            {"deliveries", work[i].deliveries},
                                            {"reason", work[i].reason}});
    } else {
      logger().error("dead_letter_failed", {{"entry", entry.id},
                                            {"stream", options.stream_key},
                                            {"dead_letter_stream", options.dead_letter_stream},
                                            {"error", failures[i]},
                                            {"reason", work[i].reason},
                                            {"action", "left pending; the write is tried again later"}});
    }
  }
}

}  // namespace connector
