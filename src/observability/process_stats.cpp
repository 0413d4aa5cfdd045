#include "observability/process_stats.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace connector {
namespace {
/// The fields of /proc/self/stat after the command name (which may hold spaces), so field 3 is index 0.
std::optional<std::vector<std::string>> stat_fields() {
  std::ifstream in("/proc/self/stat");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = content.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(content.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

/// Boot time in Unix seconds (`btime` of /proc/stat).
std::optional<double> boot_time() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
  }
  return std::nullopt;
}
}  // namespace

ProcessStats read_process_stats() {
  ProcessStats stats;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  try {
    if (const auto fields = stat_fields(); fields && fields->size() > 21) {
      // utime, stime: fields 14 and 15; starttime: field 22; rss (pages): field 24.
      stats.cpu_seconds = (std::stod((*fields)[11]) + std::stod((*fields)[12])) / ticks;
      if (const auto boot = boot_time()) stats.start_time_seconds = *boot + std::stod((*fields)[19]) / ticks;
      stats.resident_memory_bytes =
          std::stoull((*fields)[21]) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    }
  } catch (const std::exception&) {
    // A /proc we cannot parse leaves the fields empty: the samples are omitted rather than wrong.
  }
  std::error_code error;
  std::uint64_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", error), end; !error && it != end;
       it.increment(error))
    ++fds;
  if (!error) stats.open_fds = fds;
  return stats;
}

}  // namespace connector
