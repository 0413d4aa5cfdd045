#include "support/eventhubs_sink_options.hpp"

#include <filesystem>
#include <fstream>
#include <string>

#include "common/errors.hpp"

namespace connector::testing {

EventHubsSinkOptions sink_options_for(const FakeEventHubsServer& server) {
  EventHubsSinkOptions options;
  options.connection.host = "localhost";
  options.connection.port = server.port();
  options.connection.endpoint = "sb://localhost:" + std::to_string(server.port()) + "/";
  options.connection.shared_access_key_name = server.options().key_name;
  options.connection.shared_access_key = server.options().key;
  options.connection.entity_path = server.options().hub;
  options.connection.use_development_emulator = !server.options().tls;
  options.hub = server.options().hub;
  if (server.certificates() != nullptr) options.ca_file = server.certificates()->ca_cert.string();
  options.max_in_flight_events = 400;
  options.retry_delay = std::chrono::milliseconds(50);
  options.max_retry_delay = std::chrono::milliseconds(500);
  options.operation_timeout = std::chrono::milliseconds(10000);
  return options;
}

std::string sink_start_error(EventHubsSinkOptions options) {
  EventHubsSink sink(std::move(options));
  try {
    sink.start();
  } catch (const EventHubsError& e) {
    return e.what();
  }
  return "";
}

std::set<std::string> thread_names() {
  std::set<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string line;
    if (std::getline(comm, line)) names.insert(line);
  }
  return names;
}

}  // namespace connector::testing
