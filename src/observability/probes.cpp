#include "observability/probes.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace connector {
namespace {
void check_thread(const char* name, const Heartbeat& heartbeat, std::chrono::milliseconds stuck_after,
                  std::int64_t now_ms, ProbeResult& result) {
  const std::int64_t last = heartbeat.last_ms();
  if (last == 0 || heartbeat.parked()) return;
  const std::int64_t silent = now_ms - last;
  if (silent <= stuck_after.count()) return;
  result.ok = false;
  if (!result.reason.empty()) result.reason += "; ";
  result.reason += fmt::format("the {} thread made no progress for {} ms (limit {} ms)", name, silent,
                               stuck_after.count());
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
  const auto add = [&result](const std::string& reason) {
    result.ok = false;
    if (!result.reason.empty()) result.reason += "; ";
    result.reason += reason;
  };
  if (!group.polled) {
    add("Redis not checked yet");
  } else if (!group.redis_up) {
    add("Redis unreachable: " + group.error);
  } else if (!group.group_exists) {
    add(group.error.empty() ? std::string("consumer group missing") : group.error);
  }
  if (!output_ready) add("output not connected or not authorised");
  return result;
}

std::string probe_body(const ProbeResult& result) {
  nlohmann::json body = {{"status", result.ok ? "ok" : "unavailable"}};
  if (!result.ok) body["reason"] = result.reason;
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace connector
