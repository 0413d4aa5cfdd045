#pragma once
// Runs the real connector binary (or the publisher) as a child process for end-to-end tests.
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "support/child_process.hpp"

namespace connector::testing {

/// The connector binary with settings given as environment variables, run in its own temp dir (so no
/// stray .env is read). Logs go to <dir>/connector-<n>.log. HTTP_ADDRESS is "off" unless `settings` set it.
class ConnectorProcess {
 public:
  ConnectorProcess(std::map<std::string, std::string> settings, const std::filesystem::path& work_dir,
                   std::vector<std::string> extra_args = {});
  ChildProcess& process() { return *process_; }
  /// True once the connector logged `connector_started` (its signal handling is in place by then).
  bool wait_started(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  /// SIGINT and wait; returns the exit status (-1 on timeout).
  int interrupt_and_wait(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  std::string log() const { return process_->log(); }

 private:
  std::unique_ptr<ChildProcess> process_;
};

/// Number of `*.json` files in `dir` (0 when it does not exist).
std::size_t count_json_files(const std::filesystem::path& dir);

}  // namespace connector::testing
