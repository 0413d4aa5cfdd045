#include "observability/logger.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>

namespace connector {
namespace {
std::string read_hostname() {
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0) return "unknown";
  return buffer;
}

std::string dump(const nlohmann::json& value) {
  // Stream values are bytes: replace invalid UTF-8 instead of throwing from a log call.
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// A value for a pretty line: a plain word as is; a string that is empty or holds a space, a quote or an
/// `=` is quoted (JSON escapes), so `key=value` pairs stay unambiguous, as in logfmt.
std::string pretty_value(const nlohmann::json& value) {
  if (!value.is_string()) return dump(value);
  const auto& text = value.get_ref<const std::string&>();
  const bool plain = !text.empty() && std::none_of(text.begin(), text.end(), [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) || c == '"' || c == '=' ||
           std::iscntrl(static_cast<unsigned char>(c));
  });
  return plain ? text : dump(value);
}
}  // namespace

Logger::Logger(LogLevel level, LogFormat format, std::FILE* out)
    : level_(static_cast<int>(level)),
      format_(format),
      out_(out),
      pid_(::getpid()),
      hostname_(read_hostname()) {}

std::string Logger::format_line(LogLevel level, std::string_view msg, const nlohmann::json& fields,
                                long long time_ms) const {
  std::string line;
  if (format_.load() == LogFormat::Json) {
    line = fmt::format(R"({{"level":{},"time":{},"pid":{},"hostname":{},"msg":{})", static_cast<int>(level),
                       time_ms, pid_, dump(hostname_), dump(std::string(msg)));
    if (fields.is_object()) {
      for (const auto& [key, value] : fields.items()) {
        line += fmt::format(",{}:{}", dump(key), dump(value));
      }
    }
    line += "}\n";
  } else {
    std::time_t seconds = static_cast<std::time_t>(time_ms / 1000);
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    std::string name(log_level_name(level));
    for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    line = fmt::format("[{:02}:{:02}:{:02}.{:03}] {}: {}", utc.tm_hour, utc.tm_min, utc.tm_sec,
                       time_ms % 1000, name, msg);
    if (fields.is_object()) {
      for (const auto& [key, value] : fields.items()) {
        line += fmt::format(" {}={}", key, pretty_value(value));
      }
    }
    line += "\n";
  }
  return line;
}

void Logger::log(LogLevel level, std::string_view msg, const nlohmann::json& fields) {
  if (!enabled(level)) return;
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const std::string line = format_line(level, msg, fields, now);
  std::lock_guard lock(write_mutex_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

Logger& logger() {
  static Logger instance;
  return instance;
}

void set_logger_options(LogLevel level, LogFormat format) {
  logger().set_level(level);
  logger().set_format(format);
}

std::optional<LogLevel> parse_log_level(std::string_view name) {
  if (name == "trace") return LogLevel::Trace;
  if (name == "debug") return LogLevel::Debug;
  if (name == "info") return LogLevel::Info;
  if (name == "warn") return LogLevel::Warn;
  if (name == "error") return LogLevel::Error;
  if (name == "fatal") return LogLevel::Fatal;
  return std::nullopt;
}

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::Trace:
      return "trace";
    case LogLevel::Debug:
      return "debug";
    case LogLevel::Info:
      return "info";
    case LogLevel::Warn:
      return "warn";
    case LogLevel::Error:
      return "error";
    case LogLevel::Fatal:
      return "fatal";
  }
  return "info";
}

}  // namespace connector
