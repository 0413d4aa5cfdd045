#pragma once
// Structured logging in pino's line format: `npx pino-pretty` renders it.
#include <atomic>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace connector {

/// Writes one JSON object per line ({"level":30,"time":…,"pid":…,"hostname":…,"msg":…,…fields}), or a
/// human line with LOG_FORMAT=pretty. Thread-safe; a line is written with one call so lines never mix.
class Logger {
 public:
  explicit Logger(LogLevel level = LogLevel::Info, LogFormat format = LogFormat::Json,
                  std::FILE* out = stdout);

  bool enabled(LogLevel level) const noexcept {
    return static_cast<int>(level) >= level_.load(std::memory_order_relaxed);
  }
  void set_level(LogLevel level) noexcept { level_.store(static_cast<int>(level)); }
  void set_format(LogFormat format) noexcept { format_.store(format); }

  /// `fields` must be a JSON object (or null); invalid UTF-8 in it is replaced, never thrown on.
  void log(LogLevel level, std::string_view msg, const nlohmann::json& fields = nullptr);
  void trace(std::string_view msg, const nlohmann::json& fields = nullptr) {
    log(LogLevel::Trace, msg, fields);
  }
  void debug(std::string_view msg, const nlohmann::json& fields = nullptr) {
    log(LogLevel::Debug, msg, fields);
  }
  void info(std::string_view msg, const nlohmann::json& fields = nullptr) {
    log(LogLevel::Info, msg, fields);
  }
  void warn(std::string_view msg, const nlohmann::json& fields = nullptr) {
    log(LogLevel::Warn, msg, fields);
  }
  void error(std::string_view msg, const nlohmann::json& fields = nullptr) {
    log(LogLevel::Error, msg, fields);
  }
  void fatal(std::string_view msg, const nlohmann::json& fields = nullptr) {
    log(LogLevel::Fatal, msg, fields);
  }

  /// Renders a line without writing it (used by the tests).
  std::string format_line(LogLevel level, std::string_view msg, const nlohmann::json& fields,
                          long long time_ms) const;

 private:
  std::atomic<int> level_;
  std::atomic<LogFormat> format_;
  std::FILE* out_;
  long pid_;
  std::string hostname_;
  std::mutex write_mutex_;  // guards writes to out_
};

/// The process-wide logger; main() sets its level and format once the configuration is known.
Logger& logger();
void set_logger_options(LogLevel level, LogFormat format);

/// Parses pino's level names ("trace" … "fatal"); nullopt when unknown.
std::optional<LogLevel> parse_log_level(std::string_view name);
std::string_view log_level_name(LogLevel level);

}  // namespace connector
