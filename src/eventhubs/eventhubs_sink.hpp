#pragma once
// The EVENT_HUBS output: events to one Event Hub over AMQP 1.0, at least once (an event is confirmed only
// by the service's Accepted disposition; README "EVENT_HUBS").
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "common/startup_attempts.hpp"
#include "config/config.hpp"
#include "eventhubs/amqp_io.hpp"
#include "identity/token_refresher.hpp"
#include "sinks/sink.hpp"

namespace connector {

/// Options of the EVENT_HUBS output, taken from Config.
struct EventHubsSinkOptions {
  EventHubsConnectionString connection;
  std::string hub;
  std::optional<std::string> partition_id;
  std::string ca_file;                      // extra CA (EVENT_HUBS_TLS_CA_FILE), else system store
  std::size_t max_in_flight_events = 0;     // BATCH_SIZE × MAX_IN_FLIGHT_BATCHES: bounds memory
  std::chrono::milliseconds retry_delay{};  // base of the capped exponential reconnect back-off
  // Sender links on the connection: each has the service's credit (~300) in flight, so a long round
  // trip needs several. Events with the same partition key always take the same link.
  std::size_t sender_links = 0;                 // EVENT_HUBS_SENDER_LINKS (0 opens one)
  std::chrono::milliseconds max_retry_delay{};  // the back-off's cap: max_retry_delay(Config)
  // A CBS reply, and a delivery's disposition: after that the connection is presumed dead (closed,
  // reconnected, unconfirmed events sent again). 60 s, as the SDKs; tests shorten it.
  std::chrono::milliseconds operation_timeout{60000};
  // From the TCP connect to the attached sender (TLS, SASL, Open, CBS, attach): a port that accepts and
  // never answers fails start() after this long instead of after the idle or operation timeout.
  std::chrono::milliseconds connect_timeout{30000};
  std::chrono::milliseconds idle_timeout{60000};    // AMQP idle timeout (the SDKs' value); heartbeats keep it
  // Connections start() tries when the service or the network drops one being set up; wrong
  // credentials, an unknown hub or a setup timeout end start() at once.
  int startup_attempts = kStartupConnectAttempts;
  std::chrono::seconds token_lifetime{3600};        // tests shorten it to see renewal
  std::size_t fallback_max_message_size = 1048576;  // when the peer advertises none
  std::shared_ptr<const AccessTokenProvider> entra_tokens;  // set: Entra ID tokens (put-token type jwt), not SAS
  // EVENT_HUBS_BATCHING: consecutive events for one partition key (or partition) share a delivery, an
  // Event Hubs batch; false sends one delivery per event.
  bool batching = true;
  // Set: AMQP over WebSockets (EVENT_HUBS_TRANSPORT=websockets); amqp_path_options() completes it.
  std::optional<AmqpPathOptions> websocket;
};

/// The way of the sink's AMQP connections: `options.websocket` when set, else AMQP's own byte stream to
/// the connection string's host and port (TLS unless it names the emulator; no proxy, which applies to
/// WebSockets only); batches stamped with `options.batching`, setup_timeout = connect_timeout.
AmqpPathOptions amqp_path_options(const EventHubsSinkOptions& options);

/// Sends events to one Event Hub over AMQP 1.0; owns the thread its AMQP runs on and reconnects by itself.
///
/// Threads: start(), send(), stop() and the accessors may be called from any thread (send() and stop()
/// are meant for the pipeline thread). Everything Proton is touched on the sink's own loop thread
/// ("eventhubs"), and completions are reported from it; none is reported once stop() has returned.
class EventHubsSink final : public Sink {
 public:
  explicit EventHubsSink(EventHubsSinkOptions options);
  ~EventHubsSink() override;  // stop(0) if still running
  EventHubsSink(const EventHubsSink&) = delete;
  EventHubsSink& operator=(const EventHubsSink&) = delete;

  /// Connects, authorizes (CBS) and attaches the sender; throws EventHubsError naming the endpoint, the
  /// hub and what to check when that fails (never the key or token).
  void start() override;
  void send(Batch batch, CompletionCallback done) override;
  void stop(std::chrono::milliseconds grace) override;
  std::size_t max_event_bytes() const override;
  bool ready() const override;
  Batch spare_batch() override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace connector
