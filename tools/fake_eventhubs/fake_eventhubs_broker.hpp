#pragma once
// The AMQP 1.0 side of fake-eventhubs: CBS, $management and event sender links, as Event Hubs does them.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <proton/connection.hpp>
#include <proton/container.hpp>
#include <proton/delivery.hpp>
#include <proton/listen_handler.hpp>
#include <proton/listener.hpp>
#include <proton/message.hpp>
#include <proton/messaging_handler.hpp>
#include <proton/receiver.hpp>
#include <proton/sender.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "event_recorder.hpp"
#include "fake_eventhubs_options.hpp"
#include "plain_event.hpp"
#include "websocket_listener.hpp"

namespace connector {

/// Requests made from signal handlers; the container thread polls them on its timer.
/// Lock-free atomics, so setting them is async-signal-safe.
struct BrokerSignals {
  std::atomic<bool> stop{false};      // SIGTERM, SIGINT
  std::atomic<bool> drop_all{false};  // SIGUSR1
  std::atomic<bool> flush{false};     // SIGUSR2
};

/// Listens, authorizes through CBS, records accepted events and injects the configured faults.
///
/// Threads: run() serves on `--threads` Proton container threads. Proton hands one connection's events
/// (and its work queue) to one thread at a time, so a ConnectionState is only touched in its
/// connection's context; timers act on a connection through its work queue. What all connections
/// share is guarded: `connections_mutex_` the map itself, `records_mutex_` the record file and the
/// partition statistics; the fault counters are atomics.
class FakeEventHubsBroker : public proton::messaging_handler {
 public:
  FakeEventHubsBroker(FakeEventHubsOptions options, BrokerSignals& signals);

  /// Listens and serves until a stop is requested; returns the process exit status.
  int run();

 private:
  enum class LinkRole { Cbs, Management, Events };
  struct IncomingLink {
    LinkRole role = LinkRole::Events;
    std::string entity_path;  // normalized: "hub" or "hub/partitions/<id>"
    std::string partition;    // empty: chosen per event
  };
  struct ReplyLink {
    proton::sender sender;
    std::string address;  // the client's receiver target address, which requests name in reply-to
    std::string name;
  };
  struct ConnectionState {
    std::uint64_t id = 0;
    std::string peer;
    std::map<std::string, long long> grants;  // authorized entity path → token expiry (Unix seconds)
    std::map<proton::receiver, IncomingLink> incoming;
    std::vector<ReplyLink> replies;
    bool dropping = false;  // a drop is scheduled: deliveries are ignored until the socket closes
    // --delay-ms: dispositions waiting for their time, oldest first, and whether a timer will run them.
    std::deque<std::pair<std::chrono::steady_clock::time_point, std::function<void()>>> delayed;
    bool delay_timer_armed = false;
  };
  struct PartitionStats {
    long long last_sequence_number = -1;
    long long last_enqueued_ms = 0;
    std::uint64_t events = 0;      // accepted since this process started
    std::uint64_t deliveries = 0;  // accepted deliveries: one per event, or one per batch
  };
  enum class Verdict { Accept, Reject };

  /// The clients' AMQP listener, or (`websocket_hop`) the plain one on loopback that the WebSocket
  /// listener relays to: TLS, if any, was the WebSocket's.
  class Listener : public proton::listen_handler {
   public:
    Listener(FakeEventHubsBroker& broker, bool websocket_hop)
        : broker_(broker), websocket_hop_(websocket_hop) {}
    void on_open(proton::listener& listener) override;
    proton::connection_options on_accept(proton::listener& listener) override;
    void on_error(proton::listener& listener, const std::string& what) override;

   private:
    FakeEventHubsBroker& broker_;
    const bool websocket_hop_;
  };

  void on_container_start(proton::container& container) override;
  void on_connection_open(proton::connection& connection) override;
  void on_session_open(proton::session& session) override;
  void on_receiver_open(proton::receiver& receiver) override;
  void on_sender_open(proton::sender& sender) override;
  void on_receiver_close(proton::receiver& receiver) override;
  void on_sender_close(proton::sender& sender) override;
  void on_message(proton::delivery& delivery, proton::message& message) override;
  void on_transport_error(proton::transport& transport) override;
  void on_transport_close(proton::transport& transport) override;
  void on_connection_error(proton::connection& connection) override;

  void tick();
  /// The state of `connection`, or null once it is gone; call only in that connection's context.
  ConnectionState* state_of(const proton::connection& connection);
  std::vector<proton::connection> connection_list();
  /// Runs `fn` with the connection's state in the connection's context, if it is still there then.
  void in_context(const proton::connection& connection, std::function<void(ConnectionState&)> fn);
  void check_link_tokens(ConnectionState& state);
  void shutdown();
  /// The log fields of record_flushed and shutting_down; call with records_mutex_ held.
  nlohmann::json counts() const;
  void handle_put_token(ConnectionState& state, const proton::message& request);
  void handle_management(ConnectionState& state, const proton::message& request);
  void handle_event(ConnectionState& state, const IncomingLink& link, proton::delivery& delivery,
                    const proton::message& message);
  /// The records of an accepted delivery (partition and link set): `batch` holds the events of a batch
  /// envelope (empty for a single event); `plain` is null when it is not a plain event.
  std::vector<EventRecord> accepted_records(const IncomingLink& link, const proton::delivery& delivery,
                                            const proton::message& message,
                                            std::vector<EventRecord> batch, const PlainEvent* plain);
  void settle_event(const proton::connection& connection, proton::delivery delivery, Verdict verdict,
                    const std::string& condition, const std::string& description,
                    std::vector<EventRecord> records);
  void reply(ConnectionState& state, const proton::message& request, proton::message response);
  void schedule_drop(const proton::connection& connection, const char* reason);
  void arm_delay_timer(const proton::connection& connection, ConnectionState& state);
  void run_due_dispositions(const proton::connection& connection, ConnectionState& state);
  void detach_link(ConnectionState& state, proton::receiver receiver);
  long long grant_expiry(const ConnectionState& state, const std::string& entity_path) const;
  std::string choose_partition(const IncomingLink& link, std::optional<std::string_view> key);

  FakeEventHubsOptions options_;
  BrokerSignals& signals_;
  Listener listener_handler_{*this, false};
  Listener websocket_hop_handler_{*this, true};
  proton::container* container_ = nullptr;
  proton::listener listener_;
  proton::listener websocket_hop_;  // --websocket-port: where websocket_ relays to
  std::mutex websocket_mutex_;      // guards websocket_ (container threads start and stop it)
  std::unique_ptr<WebSocketListener> websocket_;
  EventRecorder recorder_;
  std::map<proton::connection, ConnectionState> connections_;
  std::vector<PartitionStats> partitions_;
  std::mutex connections_mutex_;  // guards the map, not the states (see the class comment)
  std::mutex records_mutex_;      // guards recorder_ and partitions_
  std::atomic<std::uint64_t> next_connection_id_{1};
  std::atomic<std::uint64_t> received_{0};    // events that reached the broker (a batch's one by one), any outcome
  std::atomic<std::uint64_t> deliveries_{0};  // event deliveries that passed the size check (*-every N)
  std::atomic<std::uint64_t> accepted_{0};    // accepted events (--drop-after, --detach-link-after)
  std::atomic<std::uint64_t> round_robin_{0};
  long long created_at_ms_ = 0;
  std::atomic<int> exit_status_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace connector
