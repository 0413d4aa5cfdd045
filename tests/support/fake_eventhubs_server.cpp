#include "support/fake_eventhubs_server.hpp"

#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace connector::testing {

namespace {

std::string base64_decode(const std::string& text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : text) {
    const int v = value(c);
    if (v < 0) continue;  // '=' padding
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  return out;
}

}  // namespace

FakeEventHubsServer::FakeEventHubsServer(FakeEventHubsOptions options) : options_(std::move(options)) {
  if (options_.tls) {
    std::filesystem::create_directories(dir_.path() / "certs");
    certificates_ = make_test_certificates(dir_.path() / "certs");
  }
  record_file_ = dir_.path() / "events.jsonl";
  log_file_ = dir_.path() / "fake-eventhubs.log";
  port_ = free_port();
  if (options_.websocket) websocket_port_ = free_port();
  start();
}

FakeEventHubsServer::~FakeEventHubsServer() { stop(); }

void FakeEventHubsServer::start() {
  if (process_) return;
  std::vector<std::string> argv = {FAKE_EVENTHUBS_BINARY,
                                   "--port",
                                   std::to_string(port_),
                                   "--hub",
                                   options_.hub,
                                   "--partitions",
                                   std::to_string(options_.partitions),
                                   "--key-name",
                                   options_.key_name,
                                   "--key",
                                   options_.key,
                                   "--max-message-size",
                                   std::to_string(options_.max_message_size),
                                   "--record",
                                   record_file_.string()};
  if (certificates_) {
    argv.insert(argv.end(), {"--tls-cert", certificates_->server_cert.string(), "--tls-key",
                             certificates_->server_key.string()});
  }
  auto add = [&](const char* flag, int value) {
    if (value > 0) argv.insert(argv.end(), {flag, std::to_string(value)});
  };
  add("--reject-every", options_.reject_every);
  add("--server-busy-every", options_.server_busy_every);
  add("--drop-after", options_.drop_after);
  add("--drop-first-connections", options_.drop_first_connections);
  add("--detach-link-after", options_.detach_link_after);
  add("--delay-ms", options_.delay_ms);
  add("--credit", options_.credit);
  add("--websocket-port", websocket_port_);
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());

  const int listening_before = count_in_log("fake-eventhubs listening on");
  const int websocket_before = count_in_log("fake-eventhubs websocket listening on");
  process_ = std::make_unique<ChildProcess>(argv, log_file_, options_.env);
  const auto listening = [&] {
    return count_in_log("fake-eventhubs listening on") > listening_before &&
           (!options_.websocket || count_in_log("fake-eventhubs websocket listening on") > websocket_before);
  };
  const bool ready =
      wait_until([&] { return listening() || !process_->running(); }, std::chrono::seconds(10));
  if (!ready || !process_->running()) {
    const std::string output = log();
    process_.reset();
    throw std::runtime_error("fake-eventhubs did not start on port " + std::to_string(port_) + ":\n" +
                             output);
  }
}

void FakeEventHubsServer::stop() {
  if (!process_) return;
  process_->signal(SIGTERM);
  if (process_->wait(std::chrono::seconds(5)) < 0) process_->kill();
  process_.reset();
}

void FakeEventHubsServer::restart() {
  stop();
  start();
}

void FakeEventHubsServer::drop_connections() {
  if (process_) process_->signal(SIGUSR1);
}

std::string FakeEventHubsServer::log() const {
  std::ifstream in(log_file_, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int FakeEventHubsServer::count_in_log(const std::string& needle) const {
  const std::string text = log();
  int count = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size()))
    ++count;
  return count;
}

std::string FakeEventHubsServer::connection_string(std::uint16_t port) const {
  std::string text = "Endpoint=sb://localhost:" + std::to_string(port) +
                     "/;SharedAccessKeyName=" + options_.key_name + ";SharedAccessKey=" + options_.key +
                     ";EntityPath=" + options_.hub;
  if (!options_.tls) text += ";UseDevelopmentEmulator=true";
  return text;
}

std::string FakeEventHubsServer::flush_record() {
  if (!process_ || !process_->running()) return {};
  const std::string marker = "\"msg\":\"record_flushed\"";
  const int before = count_in_log(marker);
  process_->signal(SIGUSR2);
  if (!wait_until([&] { return count_in_log(marker) > before; }, std::chrono::seconds(5))) return {};
  const std::string text = log();
  const auto at = text.rfind(marker);
  const auto newline = text.rfind('\n', at);
  const std::size_t begin = newline == std::string::npos ? 0 : newline + 1;
  const auto end = text.find('\n', at);
  return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

FakeEventHubsCounts FakeEventHubsServer::counts() {
  FakeEventHubsCounts counts;
  const std::string line = flush_record();
  if (line.empty()) return counts;
  const auto json = nlohmann::json::parse(line);
  counts.received = json.at("received").get<std::uint64_t>();
  for (const auto& [partition, n] : json.at("events_by_partition").items())
    counts.events_by_partition[partition] = n.get<std::uint64_t>();
  for (const auto& [partition, n] : json.at("deliveries_by_partition").items())
    counts.deliveries_by_partition[partition] = n.get<std::uint64_t>();
  return counts;
}

std::vector<RecordedEvent> FakeEventHubsServer::events() {
  flush_record();
  std::vector<RecordedEvent> events;
  std::ifstream in(record_file_);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto json = nlohmann::json::parse(line);
    RecordedEvent event;
    event.seq = json.at("seq").get<std::uint64_t>();
    event.partition = json.at("partition").get<std::string>();
    if (!json.at("partition_key").is_null())
      event.partition_key = json.at("partition_key").get<std::string>();
    if (!json.at("message_id").is_null()) event.message_id = json.at("message_id").get<std::string>();
    if (!json.at("content_type").is_null()) event.content_type = json.at("content_type").get<std::string>();
    if (json.contains("binary_properties")) {
      for (const auto& name : json.at("binary_properties"))
        event.binary_properties.insert(name.get<std::string>());
    }
    for (const auto& [name, value] : json.at("properties").items()) {
      const auto text = value.get<std::string>();
      event.properties[name] = event.binary_properties.count(name) != 0 ? base64_decode(text) : text;
    }
    event.body = base64_decode(json.at("body_base64").get<std::string>());
    event.body_kind = json.at("body_kind").get<std::string>();
    if (json.contains("link")) event.link = json.at("link").get<std::string>();
    events.push_back(std::move(event));
  }
  return events;
}

}  // namespace connector::testing
