#include "observability/exposition.hpp"

#include <fmt/format.h>

#include "observability/build_info.hpp"

namespace connector {
namespace {

/// Label values escaped as the format asks (backslash, double quote, newline).
std::string escape(std::string_view value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

class Writer {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  template <typename T>
  void sample(std::string_view name, T value, std::string_view labels = {}) {
    if (labels.empty()) {
      fmt::format_to(std::back_inserter(out_), "{} {}\n", name, value);
    } else {
      fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name, labels, value);
    }
  }
  void counter(std::string_view name, std::string_view help, std::uint64_t value) {
    family(name, "counter", help);
    sample(name, value);
  }
  template <typename T>
  void gauge(std::string_view name, std::string_view help, T value) {
    family(name, "gauge", help);
    sample(name, value);
  }
  void histogram(std::string_view name, std::string_view help, const Histogram::Snapshot& h) {
    family(name, "histogram", help);
    const std::string bucket = std::string(name) + "_bucket";
    for (std::size_t i = 0; i < h.bounds.size(); ++i) {
      sample(bucket, h.cumulative[i], fmt::format("le=\"{}\"", h.bounds[i]));
    }
    sample(bucket, h.cumulative.back(), "le=\"+Inf\"");
    sample(std::string(name) + "_sum", h.sum);
    sample(std::string(name) + "_count", h.cumulative.back());
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

/// What the pipeline did: entries read, confirmed, acked, dead-lettered, retried, and how long it took.
void write_delivery(Writer& w, const Metrics& m, const LiveState& live) {
  w.counter("connector_entries_read_total", "Stream entries read with XREADGROUP (new and own pending).",
            m.entries_read.value());
  w.counter("connector_entries_claimed_total", "Pending entries claimed from idle consumers.",
            m.entries_claimed.value());
  w.counter("connector_events_confirmed_total", "Events the output confirmed (Accepted).",
            m.events_confirmed.value());
  w.counter("connector_entries_acked_total", "Entries XACKed after the output confirmed them.",
            m.entries_acked.value());
  w.family("connector_entries_dead_lettered_total", "counter",
           "Entries moved to the dead-letter stream, by reason.");
  for (std::size_t i = 0; i < m.dead_lettered_by_reason.size(); ++i) {
    w.sample("connector_entries_dead_lettered_total", m.dead_lettered_by_reason[i].value(),
             fmt::format("reason=\"{}\"", label(static_cast<DeadLetterReason>(i))));
  }
  w.family("connector_events_retried_total", "counter", "Events sent again, by cause.");
  for (std::size_t i = 0; i < m.retried_by_cause.size(); ++i) {
    w.sample("connector_events_retried_total", m.retried_by_cause[i].value(),
             fmt::format("cause=\"{}\"", label(static_cast<RetryCause>(i))));
  }
  if (live.events_in_flight) {
    w.gauge("connector_events_in_flight", "Events handed to the output and not completed yet.",
            *live.events_in_flight);
  }
  w.histogram("connector_batch_duration_seconds",
              "Time from reading a batch to its last entry acked or dead-lettered.",
              m.batch_duration.snapshot());
  w.histogram("connector_end_to_end_latency_seconds",
              "Time from the entry ID's millisecond timestamp to its XACK (includes waiting in the stream).",
              m.end_to_end_latency.snapshot());
}

/// What the consumer group and the output look like now.
void write_group_and_output(Writer& w, const Metrics& m, const LiveState& live, std::int64_t now_unix_s) {
  const GroupStatus& group = live.group;
  w.gauge("connector_redis_up", "1 when the last poll of the consumer group reached Redis.",
          group.redis_up ? 1 : 0);
  w.gauge("connector_output_up", "1 while the output is connected and authorised.", live.output_up ? 1 : 0);
  w.gauge("connector_consumer_group_lag_known",
          "1 when Redis could compute the group's lag; connector_consumer_group_lag is omitted otherwise.",
          group.lag ? 1 : 0);
  if (group.lag) {
    w.gauge("connector_consumer_group_lag",
            "Entries in the stream not yet delivered to the group (XINFO GROUPS).", *group.lag);
  }
  if (group.group_exists) {
    w.gauge("connector_consumer_group_pending", "Entries delivered to the group and not acked yet.",
            group.pending);
    w.gauge("connector_consumer_group_oldest_pending_age_seconds",
            "Age of the group's oldest pending entry (from its ID); 0 when nothing is pending.",
            group.oldest_pending_age_seconds.value_or(0.0));
  }
  if (live.token_metric) {
    const std::int64_t expiry = m.eventhubs_token_expiry_unix_s.load(std::memory_order_relaxed);
    if (expiry > 0) {
      w.gauge("connector_eventhubs_token_expires_in_seconds",
              "Seconds until the Event Hubs token last put on the connection expires.", expiry - now_unix_s);
    }
  }
}

/// The Prometheus client libraries' standard process metrics.
void write_process(Writer& w, const ProcessStats& process) {
  if (process.cpu_seconds) {
    w.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    w.sample("process_cpu_seconds_total", *process.cpu_seconds);
  }
  if (process.resident_memory_bytes)
    w.gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
            *process.resident_memory_bytes);
  if (process.open_fds) w.gauge("process_open_fds", "Number of open file descriptors.", *process.open_fds);
  if (process.start_time_seconds)
    w.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
            *process.start_time_seconds);
}

}  // namespace

std::string render_exposition(const Metrics& m, const LiveState& live, const ProcessStats& process,
                              std::int64_t now_unix_s) {
  Writer w;
  w.family("connector_build_info", "gauge", "Version and git commit of the running binary (always 1).");
  w.sample("connector_build_info", 1,
           fmt::format("version=\"{}\",commit=\"{}\"", escape(build_version()), escape(build_commit())));
  write_delivery(w, m, live);
  write_group_and_output(w, m, live, now_unix_s);
  write_process(w, process);
  return w.take();
}

}  // namespace connector
