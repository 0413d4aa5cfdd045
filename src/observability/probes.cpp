#include "observability/probes.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace connector {
namespace {
constexpr std::string_view kOutputDown = "output not connected or not authorised";

void add_reason(ProbeResult& result, std::string_view reason) {
  result.ok = false;
  if (!result.reason.empty()) result.reason += "; ";
  result.reason += reason;
}

void check_thread(const char* name, const Heartbeat& heartbeat, std::chrono::milliseconds stuck_after,
                  std::int64_t now_ms, ProbeResult& result) {
  const std::int64_t last = heartbeat.last_ms();
  if (last == 0 || heartbeat.parked()) return;
  const std::int64_t silent = now_ms - last;
  if (silent <= stuck_after.count()) return;
  add_reason(result, fmt::format("the {} thread made no progress for {} ms (limit {} ms)", name, silent,
                                 stuck_after.count()));
}

/// Why one stream's group is not ready; empty when it is.
std::string group_problem(const GroupStatus& group) {
  if (!group.polled) return "Redis not checked yet";
  if (!group.redis_up) return "Redis unreachable: " + group.error;
  if (!group.group_exists) return group.error.empty() ? std::string("consumer group missing") : group.error;
  return {};
}

/// Adds one stream's failed check to `result`, naming the stream when there are several.
void add_stream_result(ProbeResult& result, const StreamLive& stream, bool several, const ProbeResult& check) {
  if (check.ok) return;
  add_reason(result, several ? fmt::format("stream '{}': {}", stream.key, check.reason) : check.reason);
}
}  // namespace

ProbeResult check_liveness(const Heartbeat& reader, const Heartbeat& acker,
                           std::chrono::milliseconds stuck_after, std::int64_t now_ms) {
  ProbeResult result;
  check_thread("reader", reader, stuck_after, now_ms, result);
  check_thread("acker", acker, stuck_after, now_ms, result);
  return result;
}

ProbeResult check_readiness(const GroupStatus& group, bool output_ready) {
  ProbeResult result;
  if (const auto problem = group_problem(group); !problem.empty()) add_reason(result, problem);
  if (!output_ready) add_reason(result, kOutputDown);
  return result;
}

ProbeResult check_liveness(const std::vector<StreamLive>& streams, std::chrono::milliseconds stuck_after,
                           std::int64_t now_ms) {
  ProbeResult result;
  for (const StreamLive& stream : streams) {
    if (stream.metrics == nullptr) continue;
    add_stream_result(result, stream, streams.size() > 1,
                      check_liveness(stream.metrics->reader_heartbeat, stream.metrics->acker_heartbeat,
                                     stuck_after, now_ms));
  }
  return result;
}

ProbeResult check_readiness(const std::vector<StreamLive>& streams, bool output_ready) {
  ProbeResult result;
  for (const StreamLive& stream : streams) {
    add_stream_result(result, stream, streams.size() > 1, check_readiness(stream.group, true));
  }
  if (!output_ready) add_reason(result, kOutputDown);
  return result;
}

std::string probe_body(const ProbeResult& result) {
  nlohmann::json body = {{"status", result.ok ? "ok" : "unavailable"}};
  if (!result.ok) body["reason"] = result.reason;
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace connector
