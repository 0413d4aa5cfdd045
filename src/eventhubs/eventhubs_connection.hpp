#pragma once
// The Event Hubs sink's AMQP side: one thread running an AmqpIoLoop, one connection at a time, and the
// state machine that connects, authorizes, sends, reconnects and stops (internal to the sink).
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <proton/connection.hpp>
#include <proton/message.hpp>
#include <proton/messaging_handler.hpp>
#include <proton/sender.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/backoff.hpp"
#include "eventhubs/amqp_io.hpp"
#include "eventhubs/cbs_client.hpp"
#include "eventhubs/delivery_tracker.hpp"
#include "eventhubs/eventhubs_sink.hpp"
#include "eventhubs/proton_internals.hpp"
#include "eventhubs/token_source.hpp"

namespace connector {

/// Sends the events of a DeliveryTracker over one AMQP connection to Event Hubs at a time, on its own
/// loop thread ("eventhubs"); reconnects, renews tokens and stops by itself.
///
/// Threads: run(), post(), join(), ready() and max_message_size() from any thread; every other member
/// function only on the loop thread (post() gets there). The lifecycle is one State; tick() and
/// connection_failed() switch over all of it.
class EventHubsConnection : public proton::messaging_handler {
 public:
  /// nullopt once the first connection can send, else why start() must fail (names the endpoint).
  using StartResult = std::function<void(std::optional<std::string> error)>;
  using PendingBatches = std::vector<std::pair<Batch, CompletionCallback>>;

  /// Throws EventHubsError when there is no hub name or no usable credential. Batches it is done with go
  /// to `spent` when given (it must outlive the connection).
  explicit EventHubsConnection(EventHubsSinkOptions options, SpentBatches* spent = nullptr);
  ~EventHubsConnection() override;  // joins the loop thread if run() started it
  EventHubsConnection(const EventHubsConnection&) = delete;
  EventHubsConnection& operator=(const EventHubsConnection&) = delete;

  // ---- any thread ----
  /// Starts the loop thread and the first connection; `started` runs once, on that thread.
  void run(StartResult started);
  /// Runs `fn` on the loop thread; the frames it makes go out after it.
  void post(std::function<void()> fn);
  /// Waits for the loop thread to end (after stop() or abort()); once, from one thread.
  void join();
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  std::size_t max_message_size() const { return max_message_size_.load(std::memory_order_relaxed); }
  const EventHubsSinkOptions& options() const { return options_; }
  /// The endpoint ("host:port") and the hub target, plus `extra`: the fields of every log line.
  nlohmann::json where(nlohmann::json extra = nlohmann::json::object()) const;
  /// "Event Hubs at host:port (hub 'target')", for error messages.
  std::string describe() const;

  // ---- loop thread ----
  /// Queues the batches and sends what credit allows.
  void add(PendingBatches batches);
  /// Sends nothing new, waits for the answers on the wire until `grace` is over, then closes; returns
  /// in run() within grace + kStopSlack + kTick. Unanswered events are never reported.
  void stop(std::chrono::milliseconds grace);
  /// Closes now without waiting for answers (start() gave up).
  void abort();

 private:
  using Clock = std::chrono::steady_clock;

  /// Where the connection is. `deadline_` belongs to the current state (see each).
  enum class State {
    Connecting,   // TCP, TLS, SASL, AMQP open; deadline: connect() + connect_timeout
    Authorizing,  // CBS put-token sent; same deadline
    Attaching,    // sender links attach; same deadline
    Ready,        // sending; each delivery's answer is due within operation_timeout
    Backoff,      // no connection; deadline: when to connect again
    Draining,     // stop(): sends nothing new, waits for answers; deadline: end of the grace period
    Closing,      // nothing is reported any more; deadline: stop the loop even without the peer's
                  // close frame
    Stopped,      // loop stopped; its thread ends
  };

  void tick();
  void connect();
  void authorize(bool renewal);
  void on_authorized(bool renewal, std::chrono::system_clock::time_point issued,
                     std::chrono::system_clock::time_point expiry);
  void open_event_sender();
  void connection_failed(const std::string& condition, const std::string& description);
  /// As connection_failed(), for the socket itself: why the loop's way failed (AmqpIoLoop::problem())
  /// replaces what Proton saw, with an empty condition.
  void transport_failed(const std::string& condition, const std::string& description);
  void schedule_reconnect(State failed_in, const std::string& condition, const std::string& description);
  void startup_failed(const std::string& condition, const std::string& description);
  void release_connection();
  void pump();
  void pump(std::size_t lane);
  bool with_partition_key() const { return !options_.partition_id; }  // a partition target takes no key
  bool batch_worthwhile(std::size_t lane, const Event& first, std::size_t first_size);
  bool same_batch(const Event& a, const Event& b) const;
  void send_batch(proton::sender& sender, std::size_t lane, Clock::time_point now);
  std::optional<std::size_t> lane_of(const proton::sender& sender) const;
  std::optional<DeliveryId> delivery_id(const proton::tracker& tracker) const;
  void settle(proton::tracker& tracker, Outcome outcome, Cause cause, std::string reason,
              std::chrono::milliseconds retry_after = {});
  void flush_completions();
  void finish(Clock::time_point stop_deadline);
  void stop_loop();
  void report_start(std::optional<std::string> error);
  void check_token(std::chrono::system_clock::time_point now);
  bool has_connection() const;
  bool is_current(const proton::connection& c) const { return has_connection() && c == connection_; }
  std::string setup_timeout_text() const;
  std::string startup_error(const std::string& condition, const std::string& description) const;

  void on_connection_open(proton::connection& c) override;
  void on_connection_close(proton::connection& c) override;
  void on_connection_error(proton::connection& c) override;
  void on_session_error(proton::session& s) override;
  void on_transport_error(proton::transport& t) override;
  void on_transport_close(proton::transport& t) override;
  void on_sender_open(proton::sender& s) override;
  void on_sender_error(proton::sender& s) override;
  void on_sender_close(proton::sender& s) override;
  void on_receiver_error(proton::receiver& r) override;
  void on_receiver_close(proton::receiver& r) override;
  void on_sendable(proton::sender& s) override;
  void on_message(proton::delivery& d, proton::message& m) override;
  void on_tracker_accept(proton::tracker& t) override;
  void on_tracker_reject(proton::tracker& t) override;
  void on_tracker_release(proton::tracker& t) override;
  void on_error(const proton::error_condition& e) override;

  // ---- immutable after construction ----
  const EventHubsSinkOptions options_;
  // The loop runs on thread_; other threads reach it only through post().
  AmqpIoLoop loop_;
  const std::string target_;    // "<hub>" or "<hub>/Partitions/<id>"
  const std::string audience_;  // "sb://<host>/<target>"
  const std::string endpoint_;  // host:port of Event Hubs (443 with WebSockets), for messages and logs
  const TokenSource tokens_;
  std::thread thread_;

  // ---- read from any thread ----
  std::atomic<bool> ready_{false};
  std::atomic<std::size_t> max_message_size_;

  // ---- loop thread only ----
  State state_ = State::Backoff;
  Clock::time_point deadline_{};  // of state_
  StartResult started_;           // set until the first connection is ready or has failed
  int startup_failures_ = 0;      // connections that failed while started_ was set
  proton::connection connection_;
  // The event senders, one per lane of tracker_; `links_` names the same links for cheap comparison.
  std::vector<proton::sender> senders_;
  std::vector<LinkIdentity> links_;
  std::size_t attached_ = 0;  // senders_ whose attach came back
  CbsClient cbs_;
  std::uint64_t generation_ = 0;  // per connection attempt; a CBS reply of an older attempt does nothing
  std::optional<std::chrono::system_clock::time_point> renew_at_;
  std::optional<std::chrono::system_clock::time_point> warn_expiry_at_;
  std::chrono::system_clock::time_point token_expiry_{};
  Backoff backoff_;
  DeliveryTracker tracker_;
  std::string scratch_;  // the encoded event but its body; reused, so that encoding allocates nothing once it is grown
  std::string envelope_;  // a batch's envelope before its data sections
  std::string section_;   // a data section's header in a batch
  std::size_t link_max_message_size_ = 0;
};

}  // namespace connector
