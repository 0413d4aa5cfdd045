#include "observability/stats_reporter.hpp"

#include <cmath>

#include "observability/logger.hpp"

namespace connector {

StatsTotals StatsTotals::of(const Metrics& m) {
  return StatsTotals{m.entries_read.value(),  m.entries_claimed.value(), m.events_confirmed.value(),
                     m.entries_acked.value(), m.dead_lettered_total(),   m.retried_total()};
}

nlohmann::json stats_fields(const StatsTotals& previous, const StatsTotals& current, double seconds,
                            const StreamLive& stream, bool output_up) {
  nlohmann::json fields = nlohmann::json::object();
  fields["stream"] = stream.key;
  const auto add = [&](const char* name, std::uint64_t before, std::uint64_t now) {
    const std::uint64_t delta = now >= before ? now - before : 0;
    fields[name] = delta;
    const double rate = seconds > 0 ? static_cast<double>(delta) / seconds : 0.0;
    fields[std::string(name) + "_per_s"] = std::round(rate * 100.0) / 100.0;
  };
  add("read", previous.read, current.read);
  add("claimed", previous.claimed, current.claimed);
  add("confirmed", previous.confirmed, current.confirmed);
  add("acked", previous.acked, current.acked);
  add("dead_lettered", previous.dead_lettered, current.dead_lettered);
  add("retried", previous.retried, current.retried);
  fields["interval_s"] = std::round(seconds * 100.0) / 100.0;
  // Unknown is written as null, never as a number that could be mistaken for a measurement.
  const GroupStatus& group = stream.group;
  fields["lag"] = group.lag ? nlohmann::json(*group.lag) : nlohmann::json(nullptr);
  fields["pending"] = group.group_exists ? nlohmann::json(group.pending) : nlohmann::json(nullptr);
  fields["in_flight"] =
      stream.events_in_flight ? nlohmann::json(*stream.events_in_flight) : nlohmann::json(nullptr);
  fields["redis"] = group.redis_up ? "up" : "down";
  fields["output"] = output_up ? "up" : "down";
  return fields;
}

StatsReporter::StatsReporter(std::chrono::milliseconds interval, std::function<LiveState()> live)
    : live_(std::move(live)), task_(interval, PeriodicTask::First::AfterInterval, [this] { report(); }) {}

StatsReporter::~StatsReporter() { stop(); }

namespace {
std::vector<StatsTotals> totals_of(const LiveState& live) {
  std::vector<StatsTotals> totals;
  for (const StreamLive& stream : live.streams) {
    totals.push_back(stream.metrics != nullptr ? StatsTotals::of(*stream.metrics) : StatsTotals{});
  }
  return totals;
}
}  // namespace

void StatsReporter::start() {
  previous_ = totals_of(live_());
  since_ = std::chrono::steady_clock::now();
  task_.start();
}

void StatsReporter::stop() { task_.stop(); }

void StatsReporter::report() {
  const LiveState live = live_();
  std::vector<StatsTotals> current = totals_of(live);
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - since_).count();
  previous_.resize(current.size());
  for (std::size_t i = 0; i < current.size(); ++i) {
    logger().info("stats", stats_fields(previous_[i], current[i], seconds, live.streams[i], live.output_up));
  }
  previous_ = std::move(current);
  since_ = now;
}

}  // namespace connector
