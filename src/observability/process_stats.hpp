#pragma once
// The standard process_* metrics of Prometheus client libraries, read from /proc/self.
#include <cstdint>
#include <optional>

namespace connector {

/// CPU, memory, descriptors and start time of this process; a field is empty when /proc cannot tell.
struct ProcessStats {
  std::optional<double> cpu_seconds;
  std::optional<std::uint64_t> resident_memory_bytes;
  std::optional<std::uint64_t> open_fds;
  std::optional<double> start_time_seconds;  // Unix time
};

ProcessStats read_process_stats();

}  // namespace connector
