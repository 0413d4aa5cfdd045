#pragma once
// The AMQP 1.0 side of fake-eventhubs: CBS, $management and event sender links, as Event Hubs does them.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <proton/connection.hpp>
#include <proton/container.hpp>
#include <proton/delivery.hpp>
#include <proton/listen_handler.hpp>
#include <proton/listener.hpp>
#include <proton/message.hpp>
#include <proton/messaging_handler.hpp>
#include <proton/receiver.hpp>
#include <proton/sender.hpp>

#include "event_recorder.hpp"
#include "fake_eventhubs_options.hpp"

namespace connector {

/// Requests made from signal handlers; the container thread polls them on its timer.
/// Lock-free atomics, so setting them is async-signal-safe.
struct BrokerSignals {
  std::atomic<bool> stop{false};       // SIGTERM, SIGINT
  std::atomic<bool> drop_all{false};   // SIGUSR1
  std::atomic<bool> flush{false};      // SIGUSR2
};

/// Listens, authorizes through CBS, records accepted events and injects the configured faults.
/// Everything runs on the one Proton container thread that calls run(); nothing here is shared with
/// another thread except `signals_`.
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
  };
  struct PartitionStats {
    long long last_sequence_number = -1;
    long long last_enqueued_ms = 0;
  };
  enum class Verdict { Accept, Reject };

  class Listener : public proton::listen_handler {
   public:
    explicit Listener(FakeEventHubsBroker& broker) : broker_(broker) {}
    void on_open(proton::listener& listener) override;
    proton::connection_options on_accept(proton::listener& listener) override;
    void on_error(proton::listener& listener, const std::string& what) override;

   private:
    FakeEventHubsBroker& broker_;
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
  void shutdown();
  void handle_put_token(ConnectionState& state, const proton::message& request);
  void handle_management(ConnectionState& state, const proton::message& request);
  void handle_event(ConnectionState& state, const IncomingLink& link, proton::delivery& delivery,
                    const proton::message& message);
  void settle_event(const proton::connection& connection, proton::delivery delivery, Verdict verdict,
                    const std::string& condition, const std::string& description, EventRecord record);
  void reply(ConnectionState& state, const proton::message& request, proton::message response);
  void schedule_drop(const proton::connection& connection, const char* reason);
  long long grant_expiry(const ConnectionState& state, const std::string& entity_path) const;
  std::string choose_partition(const IncomingLink& link, const std::optional<std::string>& key);

  FakeEventHubsOptions options_;
  BrokerSignals& signals_;
  Listener listener_handler_{*this};
  proton::container* container_ = nullptr;
  proton::listener listener_;
  EventRecorder recorder_;
  std::map<proton::connection, ConnectionState> connections_;
  std::vector<PartitionStats> partitions_;
  std::uint64_t next_connection_id_ = 1;
  std::uint64_t deliveries_ = 0;  // event deliveries that passed the size check (drives *-every N)
  std::uint64_t accepted_ = 0;    // accepted events (drives --drop-after)
  std::uint64_t round_robin_ = 0;
  long long created_at_ms_ = 0;
  int exit_status_ = 0;
  bool stopping_ = false;
};

}  // namespace connector
