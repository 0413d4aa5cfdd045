#pragma once
// The answers of /healthz (liveness) and /readyz (readiness), Kubernetes' meaning of each.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "observability/exposition.hpp"
#include "observability/group_monitor.hpp"
#include "observability/metrics.hpp"

namespace connector {

/// ok, or the reason it is not (no secret, ever).
struct ProbeResult {
  bool ok = true;
  std::string reason;
};

/// Alive unless a pipeline thread neither beat nor parked for `stuck_after` (`now_ms` on the steady
/// clock, as Heartbeat uses). A down dependency never fails liveness: the loops keep beating while
/// they retry. Threads that have not beaten yet are starting, which is bounded, so they count as alive.
ProbeResult check_liveness(const Heartbeat& reader, const Heartbeat& acker,
                           std::chrono::milliseconds stuck_after, std::int64_t now_ms);

/// Ready only when Redis answers, the group exists and the output is connected and authorised.
ProbeResult check_readiness(const GroupStatus& group, bool output_ready);

/// Both probes over every stream (one output): ok when each stream is, each reason naming its stream
/// when there are several.
ProbeResult check_liveness(const std::vector<StreamLive>& streams, std::chrono::milliseconds stuck_after,
                           std::int64_t now_ms);
ProbeResult check_readiness(const std::vector<StreamLive>& streams, bool output_ready);

/// The JSON body of a probe answer: {"status":"ok"} or {"status":"unavailable","reason":"…"}.
std::string probe_body(const ProbeResult& result);

}  // namespace connector
