#include "support/connector_process.hpp"

#include <signal.h>

#include <atomic>

namespace connector::testing {

ConnectorProcess::ConnectorProcess(std::map<std::string, std::string> settings,
                                   const std::filesystem::path& work_dir,
                                   std::vector<std::string> extra_args) {
  static std::atomic<int> counter{0};
  std::filesystem::create_directories(work_dir);
  std::vector<std::string> argv = {CONNECTOR_BINARY};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  if (settings.count("LOG_LEVEL") == 0) settings["LOG_LEVEL"] = "debug";
  // Tests run in parallel: none may take the default port 9464; a test that wants the endpoint picks a port.
  if (settings.count("HTTP_ADDRESS") == 0) settings["HTTP_ADDRESS"] = "off";
  const auto log = work_dir / ("connector-" + std::to_string(++counter) + ".log");
  process_ = std::make_unique<ChildProcess>(std::move(argv), log, std::move(settings), work_dir);
}

bool ConnectorProcess::wait_started(std::chrono::milliseconds timeout) {
  return wait_until([&] { return log().find("connector_started") != std::string::npos; }, timeout);
}

int ConnectorProcess::interrupt_and_wait(std::chrono::milliseconds timeout) {
  process_->signal(SIGINT);
  return process_->wait(timeout);
}

std::size_t count_json_files(const std::filesystem::path& dir) {
  std::error_code error;
  std::size_t count = 0;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    if (it->path().extension() == ".json") ++count;
  }
  return count;
}

}  // namespace connector::testing
