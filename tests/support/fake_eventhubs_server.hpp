#pragma once
// Test fixture: a fake-eventhubs process on a free port, with its record file read back as events.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/tls_certs.hpp"

namespace connector::testing {

/// How to start fake-eventhubs; 0 means "the server's default" for the numeric fault settings.
struct FakeEventHubsOptions {
  bool tls = false;
  bool websocket = false;  // also AMQP over WebSockets on websocket_port() (wss:// with `tls`)
  std::string hub = "test-hub";
  int partitions = 4;
  std::string key_name = "send";
  std::string key = "test-key-value";
  std::size_t max_message_size = 1048576;
  int reject_every = 0;
  int server_busy_every = 0;
  int drop_after = 0;
  int drop_first_connections = 0;
  int delay_ms = 0;
  int credit = 0;
  int detach_link_after = 0;
  std::vector<std::string> extra_args;
  std::map<std::string, std::string> env;  // added to the server's environment (e.g. PN_TRACE_FRM=1)
};

/// One line of the record file: an event the server accepted.
struct RecordedEvent {
  std::uint64_t seq = 0;
  std::string partition;
  std::optional<std::string> partition_key;
  std::optional<std::string> message_id;
  std::map<std::string, std::string> properties;  // binary values as their exact bytes
  std::set<std::string> binary_properties;        // names whose value arrived as AMQP binary
  std::string body;                               // exact bytes (decoded from body_base64)
  std::string body_kind;                          // "data", "value" or "sequence"
  std::string content_type;
  std::string link;  // name of the sender link it came on
};

/// What the server counted since it started, as its record_flushed log line says.
struct FakeEventHubsCounts {
  std::uint64_t received = 0;  // events that reached it (a batch's one by one), whatever their outcome
  std::map<std::string, std::uint64_t> events_by_partition;      // accepted events
  std::map<std::string, std::uint64_t> deliveries_by_partition;  // accepted deliveries (a batch is one)
};

/// fake-eventhubs on a free port in its own temp dir; stopped on destruction.
/// Not thread-safe: use it from the test's thread.
class FakeEventHubsServer {
 public:
  explicit FakeEventHubsServer(FakeEventHubsOptions options = {});
  ~FakeEventHubsServer();
  FakeEventHubsServer(const FakeEventHubsServer&) = delete;
  FakeEventHubsServer& operator=(const FakeEventHubsServer&) = delete;

  std::uint16_t port() const { return port_; }
  /// The WebSocket listener's port (`websocket`); 0 without one.
  std::uint16_t websocket_port() const { return websocket_port_; }
  const FakeEventHubsOptions& options() const { return options_; }
  /// "Endpoint=sb://localhost:PORT/;SharedAccessKeyName=…;SharedAccessKey=…;EntityPath=hub", plus
  /// ";UseDevelopmentEmulator=true" (plain AMQP) when not TLS.
  std::string connection_string() const { return connection_string(port_); }
  /// connection_string() with the WebSocket listener's port in the Endpoint.
  std::string websocket_connection_string() const { return connection_string(websocket_port_); }
  /// The test PKI when `tls` (the server certificate is for localhost and 127.0.0.1); else null.
  const TlsCertificates* certificates() const { return certificates_ ? &*certificates_ : nullptr; }
  /// Every accepted event so far, in acceptance order. Asks the server to flush first (SIGUSR2) and
  /// waits for it to confirm; when it is not running, reads what it wrote before it stopped.
  std::vector<RecordedEvent> events();
  /// The server's counts now (SIGUSR2, then its record_flushed line); all zero when it is not running.
  FakeEventHubsCounts counts();
  /// How often `needle` occurs in the server's log (e.g. "\"msg\":\"connection_closed\"").
  int count_in_log(const std::string& needle) const;
  /// Closes every client socket at once (SIGUSR1); the server keeps listening.
  void drop_connections();
  /// stop() then start again on the same port; recorded events are kept.
  void restart();
  /// Starts it again on the same port after stop() (an outage of the caller's length).
  void start();
  /// SIGTERM and wait (the server flushes its record file); SIGKILL after 5 s.
  void stop();
  bool running() const { return process_ != nullptr; }
  /// The server's stdout/stderr (pino JSON lines), for failure messages.
  std::string log() const;
  const std::filesystem::path& record_file() const { return record_file_; }

 private:
  /// Asks a running server to flush its record file and waits for its record_flushed line; returns
  /// that line, or empty when the server is not running.
  std::string flush_record();
  std::string connection_string(std::uint16_t port) const;

  FakeEventHubsOptions options_;
  TempDir dir_;
  std::optional<TlsCertificates> certificates_;
  std::filesystem::path record_file_;
  std::filesystem::path log_file_;
  std::uint16_t port_ = 0;
  std::uint16_t websocket_port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace connector::testing
