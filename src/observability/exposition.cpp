#include "observability/exposition.hpp"

#include <fmt/format.h>

#include <array>
#include <optional>

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
  template <typename T>
  void gauge(std::string_view name, std::string_view help, T value) {
    family(name, "gauge", help);
    sample(name, value);
  }
  /// A histogram's samples; `labels` (may be empty) go before `le`.
  void histogram_samples(std::string_view name, const Histogram::Snapshot& h, std::string_view labels) {
    const std::string bucket = std::string(name) + "_bucket";
    const std::string prefix = labels.empty() ? std::string() : fmt::format("{},", labels);
    for (std::size_t i = 0; i < h.bounds.size(); ++i) {
      sample(bucket, h.cumulative[i], fmt::format("{}le=\"{}\"", prefix, h.bounds[i]));
    }
    sample(bucket, h.cumulative.back(), fmt::format("{}le=\"+Inf\"", prefix));
    sample(std::string(name) + "_sum", h.sum, labels);
    sample(std::string(name) + "_count", h.cumulative.back(), labels);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string stream_label(const StreamLive& stream) { return fmt::format("stream=\"{}\"", escape(stream.key)); }

/// A counter or gauge with one sample per stream, `value` read from each.
template <typename Value>
void per_stream(Writer& w, const LiveState& live, std::string_view name, std::string_view type,
                std::string_view help, Value value) {
  w.family(name, type, help);
  for (const StreamLive& stream : live.streams) {
    if (const auto sample = value(stream)) w.sample(name, *sample, stream_label(stream));
  }
}

template <typename Value>
void per_stream_counter(Writer& w, const LiveState& live, std::string_view name, std::string_view help,
                        Value value) {
  per_stream(w, live, name, "counter", help, [&](const StreamLive& s) -> std::optional<std::uint64_t> {
    if (s.metrics == nullptr) return std::nullopt;
    return value(*s.metrics);
  });
}

/// A family of counters labelled by stream and by one more label, e.g. the reason of a dead letter.
template <typename Labels, std::size_t N>
void per_stream_labelled(Writer& w, const LiveState& live, std::string_view name, std::string_view help,
                         std::string_view label_name, std::array<Counter, N> Metrics::*counters) {
  w.family(name, "counter", help);
  for (const StreamLive& stream : live.streams) {
    if (stream.metrics == nullptr) continue;
    for (std::size_t i = 0; i < N; ++i) {
      w.sample(name, ((*stream.metrics).*counters)[i].value(),
               fmt::format("{},{}=\"{}\"", stream_label(stream), label_name, label(static_cast<Labels>(i))));
    }
  }
}

void per_stream_histogram(Writer& w, const LiveState& live, std::string_view name, std::string_view help,
                          Histogram Metrics::*histogram) {
  w.family(name, "histogram", help);
  for (const StreamLive& stream : live.streams) {
    if (stream.metrics == nullptr) continue;
    w.histogram_samples(name, ((*stream.metrics).*histogram).snapshot(), stream_label(stream));
  }
}

/// What each stream's pipeline did: entries read, confirmed, acked, dead-lettered, retried, and how long
/// it took.
void write_delivery(Writer& w, const LiveState& live) {
  per_stream_counter(w, live, "connector_entries_read_total",
                     "Stream entries read with XREADGROUP (new and own pending).",
                     [](const Metrics& m) { return m.entries_read.value(); });
  per_stream_counter(w, live, "connector_entries_claimed_total", "Pending entries claimed from idle consumers.",
                     [](const Metrics& m) { return m.entries_claimed.value(); });
  per_stream_counter(w, live, "connector_events_confirmed_total", "Events the output confirmed (Accepted).",
                     [](const Metrics& m) { return m.events_confirmed.value(); });
  per_stream_counter(w, live, "connector_entries_acked_total", "Entries XACKed after the output confirmed them.",
                     [](const Metrics& m) { return m.entries_acked.value(); });
  per_stream_labelled<DeadLetterReason>(w, live, "connector_entries_dead_lettered_total",
                                        "Entries moved to the dead-letter stream, by reason.", "reason",
                                        &Metrics::dead_lettered_by_reason);
  per_stream_labelled<RetryCause>(w, live, "connector_events_retried_total",
                                  "Events sent again after a Retry outcome, by cause.", "cause",
                                  &Metrics::retried_by_cause);
  per_stream(w, live, "connector_events_in_flight", "gauge", "Events handed to the output and not completed yet.",
             [](const StreamLive& s) { return s.events_in_flight; });
  per_stream_histogram(w, live, "connector_batch_duration_seconds",
                       "Time from reading a batch to its last entry acked or dead-lettered.", &Metrics::batch_duration);
  per_stream_histogram(w, live, "connector_end_to_end_latency_seconds",
                       "Time from the entry ID's millisecond timestamp to its XACK (includes waiting in the stream).",
                       &Metrics::end_to_end_latency);
}

/// What each stream's consumer group looks like now.
void write_groups(Writer& w, const LiveState& live) {
  using Sample = std::optional<double>;
  per_stream(w, live, "connector_redis_up", "gauge", "1 when the last poll of the consumer group reached Redis.",
             [](const StreamLive& s) -> Sample { return s.group.redis_up ? 1 : 0; });
  per_stream(w, live, "connector_consumer_group_lag_known", "gauge",
             "1 when Redis could compute the group's lag; connector_consumer_group_lag is omitted otherwise.",
             [](const StreamLive& s) -> Sample { return s.group.lag ? 1 : 0; });
  per_stream(w, live, "connector_consumer_group_lag", "gauge",
             "Entries in the stream not yet delivered to the group (XINFO GROUPS).",
             [](const StreamLive& s) -> Sample {
               if (!s.group.lag) return std::nullopt;
               return static_cast<double>(*s.group.lag);
             });
  per_stream(w, live, "connector_consumer_group_pending", "gauge", "Entries delivered to the group and not acked yet.",
             [](const StreamLive& s) -> Sample {
               if (!s.group.group_exists) return std::nullopt;
               return static_cast<double>(s.group.pending);
             });
  per_stream(w, live, "connector_consumer_group_oldest_pending_age_seconds", "gauge",
             "Age of the group's oldest pending entry (from its ID); 0 when nothing is pending.",
             [](const StreamLive& s) -> Sample {
               if (!s.group.group_exists) return std::nullopt;
               return s.group.oldest_pending_age_seconds.value_or(0.0);
             });
}

/// The one output all streams share.
void write_output(Writer& w, const Metrics& output, const LiveState& live, std::int64_t now_unix_s) {
  w.gauge("connector_output_up", "1 while the output is connected and authorised.", live.output_up ? 1 : 0);
  w.family("connector_output_events_resent_total", "counter",
           "Events the output sent again by itself on a new connection, before any outcome, by cause.");
  for (std::size_t i = 0; i < output.retried_by_cause.size(); ++i) {
    w.sample("connector_output_events_resent_total", output.retried_by_cause[i].value(),
             fmt::format("cause=\"{}\"", label(static_cast<RetryCause>(i))));
  }
  if (live.token_metric) {
    const std::int64_t expiry = output.eventhubs_token_expiry_unix_s.load(std::memory_order_relaxed);
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

std::string render_exposition(const LiveState& live, const Metrics& output, const ProcessStats& process,
                              std::int64_t now_unix_s) {
  Writer w;
  w.family("connector_build_info", "gauge", "Version and git commit of the running binary (always 1).");
  w.sample("connector_build_info", 1,
           fmt::format("version=\"{}\",commit=\"{}\"", escape(build_version()), escape(build_commit())));
  write_delivery(w, live);
  write_groups(w, live);
  write_output(w, output, live, now_unix_s);
  write_process(w, process);
  return w.take();
}

}  // namespace connector
