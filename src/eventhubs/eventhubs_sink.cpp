#include "eventhubs/eventhubs_sink.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <proton/connection.hpp>
#include <proton/connection_options.hpp>
#include <proton/container.hpp>
#include <proton/delivery.hpp>
#include <proton/error_condition.hpp>
#include <proton/message.hpp>
#include <proton/messaging_handler.hpp>
#include <proton/receiver.hpp>
#include <proton/sender.hpp>
#include <proton/sender_options.hpp>
#include <proton/ssl.hpp>
#include <proton/target.hpp>
#include <proton/target_options.hpp>
#include <proton/tracker.hpp>
#include <proton/transport.hpp>
#include <proton/work_queue.hpp>
#include <random>
#include <thread>
#include <vector>

#include "common/errors.hpp"
#include "eventhubs/amqp_errors.hpp"
#include "common/backoff.hpp"
#include "eventhubs/cbs_client.hpp"
#include "eventhubs/message_builder.hpp"
#include "eventhubs/proton_internals.hpp"
#include "eventhubs/token_source.hpp"
#include "observability/logger.hpp"

namespace connector {

EventHubsSinkOptions EventHubsSinkOptions::from_config(const Config& config) {
  if (!config.eventhubs) {
    throw ConfigurationError({"OUTPUT_ADAPTER_TYPE=EVENT_HUBS needs EVENT_HUB_CONNECTION_STRING"});
  }
  EventHubsSinkOptions options;
  options.connection = *config.eventhubs;
  options.hub = config.event_hub_name.empty() ? config.eventhubs->entity_path : config.event_hub_name;
  options.partition_id = config.partition_id;
  options.ca_file = config.eventhubs_ca_file;
  options.max_in_flight_events = std::max<std::size_t>(1, config.batch_size * config.max_in_flight_batches);
  options.retry_delay = config.retry_delay;
  return options;
}

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// One batch handed to send(): its events, its callback, and the completions not yet reported.
struct BatchState {
  Batch events;
  CompletionCallback done;
  std::vector<Completion> ready;  // container thread only
  bool listed = false;            // container thread only: already in the flush list
};

/// One event of a batch on its way: queued for credit, or on the wire.
struct Item {
  std::shared_ptr<BatchState> batch;
  std::size_t index = 0;
  std::uint64_t sequence = 0;  // send order, to put unconfirmed items back in order after a reconnect
};

struct InFlight {
  Item item;
  Clock::time_point sent_at;
};

}  // namespace

class EventHubsSink::Impl : public proton::messaging_handler {
 public:
  explicit Impl(EventHubsSinkOptions options);

  // ---- any thread ----
  void start();
  void send(Batch batch, CompletionCallback done);
  void stop(milliseconds grace);
  std::size_t max_event_bytes() const { return max_message_size_.load(std::memory_order_relaxed); }
  bool ready() const { return ready_.load(std::memory_order_acquire); }

 private:
  enum class Phase { Idle, Connecting, Authorizing, Attaching, Ready };

  // ---- any thread: run `fn` on the container thread, then wake the current connection ----
  void post(std::function<void()> fn);

  // ---- container thread ----
  void wake_connection();
  void connect();
  void connection_failed(const std::string& condition, const std::string& description);
  void authorize(bool renewal);
  void open_event_sender();
  void pump();
  void drain_inbox();
  void complete(const Item& item, Outcome outcome, std::string reason, milliseconds retry_after = {});
  void flush_completions();
  void tick();
  void stop_container();
  void begin_stop(milliseconds grace);
  void finish();
  void finish_start(std::optional<std::string> error);
  bool is_current(const proton::connection& c) const { return phase_ != Phase::Idle && c == connection_; }
  std::string startup_error(const std::string& condition, const std::string& description) const;
  /// The endpoint and hub, plus `extra`: the fields every log line of this sink carries.
  nlohmann::json where(nlohmann::json extra = nlohmann::json::object()) const;

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
  const std::string target_;    // "<hub>" or "<hub>/Partitions/<id>"
  const std::string audience_;  // "sb://<host>/<target>"
  const std::string url_;
  const std::string endpoint_;  // host:port, for messages and logs
  const TokenSource tokens_;

  // ---- Proton: container_ runs on thread_; other threads reach it only through wake_queue_ ----
  proton::container container_;
  std::unique_ptr<proton::work_queue> wake_queue_;  // container-backed: survives reconnects
  std::thread thread_;                              // runs container_.run(); joined by stop()

  // ---- shared across threads ----
  std::atomic<bool> ready_{false};
  std::atomic<std::size_t> max_message_size_;
  std::mutex inbox_mutex_;  // guards inbox_, accepting_, wake_pending_, started_, stopped_
  std::vector<std::shared_ptr<BatchState>> inbox_;
  bool accepting_ = false;
  bool wake_pending_ = false;
  bool started_ = false;
  bool stopped_ = false;
  std::mutex start_mutex_;  // guards start_done_ and start_error_ (start() waits on start_cv_)
  std::condition_variable start_cv_;
  bool start_done_ = false;
  std::optional<std::string> start_error_;

  // ---- container thread only ----
  Phase phase_ = Phase::Idle;
  Clock::time_point phase_since_;
  bool starting_ = true;  // the first connection belongs to start(): its failure is thrown, not retried
  proton::connection connection_;
  proton::sender sender_;
  CbsClient cbs_;
  std::uint64_t generation_ = 0;  // per connection attempt; a CBS reply of an older attempt does nothing
  // Deadlines, checked by tick(). Proton's container::stop() returns from run() only once no timer is
  // pending, so the sink keeps no long timer: one short tick checks these instead.
  std::optional<Clock::time_point> reconnect_at_;
  std::optional<std::chrono::system_clock::time_point> renew_at_;
  std::optional<std::chrono::system_clock::time_point> warn_expiry_at_;
  std::chrono::system_clock::time_point token_expiry_{};
  std::optional<Clock::time_point> grace_ends_at_;
  std::optional<Clock::time_point> container_stop_at_;
  Backoff backoff_;
  std::deque<Item> queue_;  // waiting for credit, in sequence order
  std::map<proton::tracker, InFlight> in_flight_;
  std::uint64_t next_sequence_ = 0;
  std::vector<std::shared_ptr<BatchState>> to_flush_;
  bool flush_scheduled_ = false;
  bool draining_ = false;  // stop() began: send nothing new, wait for dispositions
  bool finished_ = false;  // no callback runs after this is set
  bool container_stopped_ = false;
  proton::message scratch_;  // reused for every event: building a message allocates less this way
  std::size_t link_max_message_size_ = 0;
};

EventHubsSink::Impl::Impl(EventHubsSinkOptions options)
    : options_(std::move(options)),
      target_(options_.partition_id ? fmt::format("{}/Partitions/{}", options_.hub, *options_.partition_id)
                                    : options_.hub),
      audience_(fmt::format("sb://{}/{}", options_.connection.host, target_)),
      url_(fmt::format("{}://{}:{}", options_.connection.use_development_emulator ? "amqp" : "amqps",
                       options_.connection.host, options_.connection.port)),
      endpoint_(fmt::format("{}:{}", options_.connection.host, options_.connection.port)),
      tokens_(options_.entra_tokens ? TokenSource(options_.entra_tokens)
                                    : TokenSource(options_.connection, options_.token_lifetime)),
      container_(fmt::format("redis-eventhubs-connector-{}", ::getpid())),
      max_message_size_(options_.fallback_max_message_size),
      backoff_(options_.retry_delay, options_.max_retry_delay, std::random_device{}()) {
  if (options_.hub.empty()) {
    throw EventHubsError("no Event Hub name: set EVENT_HUB_NAME or EntityPath in the connection string");
  }
  container_.auto_stop(false);
  wake_queue_ = std::make_unique<proton::work_queue>(container_);
}

// Work posted to the container runs outside any connection's event handling. Proton processes a
// connection's output only after events of that connection, so work that touched it must wake it
// ("single-threaded" rule of messaging_handler: call connection::wake() on a connection used from
// another context); otherwise frames written from here would wait for the next network event.
void EventHubsSink::Impl::post(std::function<void()> fn) {
  wake_queue_->add([this, fn = std::move(fn)] {
    fn();
    wake_connection();
  });
}

void EventHubsSink::Impl::wake_connection() {
  if (connection_) connection_.wake();
}

nlohmann::json EventHubsSink::Impl::where(nlohmann::json extra) const {
  extra["endpoint"] = endpoint_;
  extra["hub"] = target_;
  return extra;
}

// ============================================================ any thread

void EventHubsSink::Impl::start() {
  {
    std::lock_guard lock(inbox_mutex_);
    if (started_) throw EventHubsError("the Event Hubs sink was already started");
    started_ = true;
  }
  logger().info("eventhubs_connecting", where());
  thread_ = std::thread([this] { container_.run(); });
  post([this] {
    tick();
    connect();
  });
  std::unique_lock lock(start_mutex_);
  // The container thread gives up after operation_timeout itself; the margin only covers a stuck thread.
  const bool done = start_cv_.wait_for(lock, options_.operation_timeout + std::chrono::seconds(10),
                                       [this] { return start_done_; });
  std::optional<std::string> error =
      done ? start_error_
           : std::optional<std::string>(fmt::format("no answer from Event Hubs at {} (hub '{}') in time; "
                                                    "check the network path to the endpoint",
                                                    endpoint_, target_));
  lock.unlock();
  if (error) {
    post([this] { finish(); });
    thread_.join();
    {
      std::lock_guard inbox_lock(inbox_mutex_);
      stopped_ = true;
    }
    throw EventHubsError(*error);
  }
  std::lock_guard inbox_lock(inbox_mutex_);
  accepting_ = true;
}

void EventHubsSink::Impl::send(Batch batch, CompletionCallback done) {
  if (batch.empty()) return;
  auto state = std::make_shared<BatchState>();
  state->events = std::move(batch);
  state->done = std::move(done);
  bool wake = false;
  {
    std::lock_guard lock(inbox_mutex_);
    if (!accepting_) {
      // Reporting now would be a completion after (or racing with) stop(); unreported events stay
      // pending in Redis and come back, which is what stop() promises for unconfirmed work anyway.
      logger().warn("eventhubs_send_while_stopped", {{"events", state->events.size()}});
      return;
    }
    inbox_.push_back(std::move(state));
    if (!wake_pending_) wake = wake_pending_ = true;
  }
  if (wake) post([this] { drain_inbox(); });
}

void EventHubsSink::Impl::stop(milliseconds grace) {
  {
    std::lock_guard lock(inbox_mutex_);
    if (!started_ || stopped_) return;
    stopped_ = true;
    accepting_ = false;
  }
  post([this, grace] { begin_stop(grace); });
  if (thread_.joinable()) thread_.join();
  ready_.store(false, std::memory_order_release);
}

// ============================================================ container thread: connection

void EventHubsSink::Impl::connect() {
  reconnect_at_.reset();
  if (finished_ || draining_) return;
  ++generation_;
  phase_ = Phase::Connecting;
  phase_since_ = Clock::now();
  proton::connection_options opts(*this);
  opts.idle_timeout(proton::duration(60000))   // the SDKs' value; Proton sends heartbeats to keep it
      .virtual_host(options_.connection.host)  // Open hostname, TLS SNI and the name verified
      .sasl_enabled(true)
      .sasl_allowed_mechs("ANONYMOUS");
  if (!options_.connection.use_development_emulator) {
    // Setting ssl_client_options is what turns TLS on; the emulator mode must set none.
    opts.ssl_client_options(
        options_.ca_file.empty()
            ? proton::ssl_client_options(proton::ssl::VERIFY_PEER_NAME)
            : proton::ssl_client_options(options_.ca_file, proton::ssl::VERIFY_PEER_NAME));
  }
  try {
    connection_ = container_.connect(url_, opts);
  } catch (const std::exception& e) {
    connection_failed("amqp:connection:framing-error", e.what());
  }
}

void EventHubsSink::Impl::on_connection_open(proton::connection& c) {
  if (!is_current(c) || phase_ != Phase::Connecting) return;
  phase_ = Phase::Authorizing;
  phase_since_ = Clock::now();
  cbs_.open(c, fmt::format("cbs-reply-{}", generation_));
  authorize(false);
}

void EventHubsSink::Impl::authorize(bool renewal) {
  const auto issued = std::chrono::system_clock::now();
  SasToken token = tokens_.token_for(audience_, issued);
  const std::uint64_t generation = generation_;
  const auto expiry = token.expiry;
  cbs_.put_token(
      audience_, token.value, expiry, [this, renewal, generation, issued, expiry](const CbsReply& reply) {
        if (generation != generation_ || phase_ == Phase::Idle) return;
        if (!reply.ok) {
          const std::string condition = reply.status == 401   ? "amqp:unauthorized-access"
                                        : reply.status == 404 ? "amqp:not-found"
                                        : reply.status == 0   ? "com.microsoft:timeout"
                                                              : "amqp:internal-error";
          const std::string description =
              reply.status == 0 ? reply.description
                                : fmt::format("put-token status {}: {}", reply.status, reply.description);
          if (renewal) {
            logger().error("eventhubs_token_renewal_failed",
                           where({{"status", reply.status}, {"error", reply.description}}));
          }
          connection_failed(condition, description);
          return;
        }
        if (renewal) {
          logger().debug("eventhubs_token_renewed", where());
        } else {
          open_event_sender();
        }
        token_expiry_ = expiry;
        if (tokens_.renewable()) {
          renew_at_ = tokens_.renewal_time(issued, expiry);
        } else if (!renewal && !warn_expiry_at_) {
          warn_expiry_at_ = expiry_warning_time(std::chrono::system_clock::now(), expiry);
        }
      },
      tokens_.token_type());
}

void EventHubsSink::Impl::open_event_sender() {
  phase_ = Phase::Attaching;
  phase_since_ = Clock::now();
  proton::sender_options opts;
  // Unsettled sends with the receiver settling first: an Accepted disposition is the confirmation.
  opts.delivery_mode(proton::delivery_mode::AT_LEAST_ONCE).target(proton::target_options().address(target_));
  sender_ = connection_.open_sender(target_, opts);
}

void EventHubsSink::Impl::on_sender_open(proton::sender& s) {
  if (phase_ != Phase::Attaching || s != sender_) return;
  // A refused attach comes back with no target, followed by a detach carrying the error.
  if (s.target().address().empty()) return;
  link_max_message_size_ = remote_max_message_size(s).value_or(options_.fallback_max_message_size);
  max_message_size_.store(link_max_message_size_, std::memory_order_relaxed);
  phase_ = Phase::Ready;
  phase_since_ = Clock::now();
  ready_.store(true, std::memory_order_release);
  logger().info("eventhubs_connected", where({{"max_message_size", link_max_message_size_}}));
  if (starting_) {
    starting_ = false;
    finish_start(std::nullopt);
  }
  pump();
}

std::string EventHubsSink::Impl::startup_error(const std::string& condition,
                                               const std::string& description) const {
  const std::string what = describe_condition(condition, description);
  switch (classify_amqp_condition(condition)) {
    case AmqpErrorKind::Configuration:
      if (condition == "amqp:unauthorized-access" && options_.entra_tokens) {
        return fmt::format(
            "Event Hubs at {} refused the Microsoft Entra ID token for hub '{}' (unauthorized: {}); check that "
            "the identity has the Azure Event Hubs Data Sender role on the hub or its namespace",
            endpoint_, target_, what);
      }
      if (condition == "amqp:unauthorized-access") {
        return fmt::format(
            "Event Hubs at {} refused the credentials for hub '{}' (unauthorized: {}); check "
            "SharedAccessKeyName and SharedAccessKey (or SharedAccessSignature) in "
            "EVENT_HUB_CONNECTION_STRING and that the policy has the Send claim",
            endpoint_, target_, what);
      }
      if (condition == "amqp:not-found") {
        return fmt::format(
            "Event Hub '{}' was not found at {} (not-found: {}); check EVENT_HUB_NAME / EntityPath"
            "{} and the namespace in the Endpoint",
            target_, endpoint_, what, options_.partition_id ? " and EVENT_HUB_PARTITION_ID" : "");
      }
      return fmt::format("Event Hubs at {} refused hub '{}' ({}); check the hub's state and quota", endpoint_,
                         target_, what);
    default:
      return fmt::format(
          "could not connect to Event Hubs at {} (hub '{}'): {}; check the Endpoint of "
          "EVENT_HUB_CONNECTION_STRING, the network path and, for TLS, EVENT_HUBS_TLS_CA_FILE",
          endpoint_, target_, what);
  }
}

void EventHubsSink::Impl::finish_start(std::optional<std::string> error) {
  std::lock_guard lock(start_mutex_);
  start_done_ = true;
  start_error_ = std::move(error);
  start_cv_.notify_all();
}

void EventHubsSink::Impl::connection_failed(const std::string& condition, const std::string& description) {
  if (phase_ == Phase::Idle) return;
  const Phase failed_in = phase_;
  phase_ = Phase::Idle;
  ready_.store(false, std::memory_order_release);
  renew_at_.reset();
  proton::connection old = connection_;
  connection_ = proton::connection();
  sender_ = proton::sender();
  cbs_.reset();
  // Everything on the wire goes back in front of the queue, in send order, to be sent again.
  std::vector<Item> unconfirmed;
  unconfirmed.reserve(in_flight_.size());
  for (auto& [tracker, flight] : in_flight_) unconfirmed.push_back(std::move(flight.item));
  in_flight_.clear();
  std::sort(unconfirmed.begin(), unconfirmed.end(),
            [](const Item& a, const Item& b) { return a.sequence < b.sequence; });
  queue_.insert(queue_.begin(), std::make_move_iterator(unconfirmed.begin()),
                std::make_move_iterator(unconfirmed.end()));
  if (old && old.active()) {
    try {
      old.close();
      old.wake();  // see post(): the close frame must not wait for the next network event
    } catch (const std::exception&) {
      // The transport may already be gone; closing is only a courtesy to the peer.
    }
  }
  if (finished_) return;
  if (starting_) {
    starting_ = false;
    logger().error("eventhubs_connect_failed",
                   where({{"error", describe_condition(condition, description)}}));
    finish_start(startup_error(condition, description));
    return;
  }
  if (draining_) {
    finish();
    return;
  }
  const AmqpErrorKind kind = classify_amqp_condition(condition);
  milliseconds delay = backoff_.next();
  nlohmann::json fields = where();
  fields.update({{"error", describe_condition(condition, description)},
                 {"phase", failed_in == Phase::Ready ? "ready" : "connecting"},
                 {"unconfirmed", queue_.size()}});
  if (kind == AmqpErrorKind::Configuration) {
    // Credentials or the hub changed under us: nothing gets better quickly, so retry at the slow end.
    delay = options_.max_retry_delay;
    logger().error("eventhubs_configuration_error", fields);
  } else if (kind == AmqpErrorKind::ServerBusy) {
    delay += server_busy_delay(backoff_.unit_random());
  }
  fields.update({{"attempt", backoff_.attempts()}, {"delay_ms", delay.count()}});
  logger().warn("eventhubs_reconnect", fields);
  reconnect_at_ = Clock::now() + delay;
}

void EventHubsSink::Impl::on_connection_close(proton::connection& c) {
  if (is_current(c)) connection_failed("amqp:connection:forced", "the service closed the connection");
}
void EventHubsSink::Impl::on_connection_error(proton::connection& c) {
  if (is_current(c)) connection_failed(c.error().name(), c.error().description());
}
void EventHubsSink::Impl::on_session_error(proton::session& s) {
  if (is_current(s.connection())) connection_failed(s.error().name(), s.error().description());
}
void EventHubsSink::Impl::on_transport_error(proton::transport& t) {
  if (is_current(t.connection())) connection_failed(t.error().name(), t.error().description());
  if (finished_) stop_container();
}
void EventHubsSink::Impl::on_transport_close(proton::transport& t) {
  if (is_current(t.connection())) connection_failed("amqp:connection:forced", "the connection was closed");
  if (finished_) stop_container();
}
void EventHubsSink::Impl::on_sender_error(proton::sender& s) {
  if (is_current(s.connection()) && (s == sender_ || cbs_.owns(s))) {
    connection_failed(s.error().name(), s.error().description());
  }
}
void EventHubsSink::Impl::on_sender_close(proton::sender& s) {
  if (is_current(s.connection()) && (s == sender_ || cbs_.owns(s))) {
    connection_failed("amqp:link:detach-forced", "the service detached the link");
  }
}
void EventHubsSink::Impl::on_receiver_error(proton::receiver& r) {
  if (is_current(r.connection()) && cbs_.owns(r))
    connection_failed(r.error().name(), r.error().description());
}
void EventHubsSink::Impl::on_receiver_close(proton::receiver& r) {
  if (is_current(r.connection()) && cbs_.owns(r)) {
    connection_failed("amqp:link:detach-forced", "the service detached the $cbs link");
  }
}
void EventHubsSink::Impl::on_error(const proton::error_condition& e) {
  // Every specific error handler is overridden; this only catches what Proton reports otherwise.
  logger().warn("eventhubs_amqp_error", where({{"error", describe_condition(e.name(), e.description())}}));
}

// ============================================================ container thread: sending

void EventHubsSink::Impl::drain_inbox() {
  std::vector<std::shared_ptr<BatchState>> batches;
  {
    std::lock_guard lock(inbox_mutex_);
    batches.swap(inbox_);
    wake_pending_ = false;
  }
  if (finished_) return;
  for (auto& batch : batches) {
    for (std::size_t i = 0; i < batch->events.size(); ++i) queue_.push_back(Item{batch, i, next_sequence_++});
  }
  pump();
}

void EventHubsSink::Impl::pump() {
  if (phase_ != Phase::Ready || draining_ || finished_) return;
  const bool with_partition_key = !options_.partition_id;
  while (!queue_.empty() && in_flight_.size() < options_.max_in_flight_events && sender_.credit() > 0) {
    Item item = std::move(queue_.front());
    queue_.pop_front();
    const Event& event = item.batch->events[item.index];
    build_message(event, with_partition_key, scratch_);
    if (encoded_size_upper_bound(event) > link_max_message_size_) {
      const std::size_t size = encoded_size(scratch_);
      if (size > link_max_message_size_) {
        complete(item, Outcome::Reject,
                 fmt::format("event of {} bytes exceeds the Event Hub's maximum message size of {} bytes",
                             size, link_max_message_size_));
        continue;
      }
    }
    proton::tracker tracker = sender_.send(scratch_);
    in_flight_.emplace(std::move(tracker), InFlight{std::move(item), Clock::now()});
  }
}

void EventHubsSink::Impl::on_sendable(proton::sender& s) {
  if (cbs_.owns(s)) {
    cbs_.on_sendable();
  } else if (s == sender_) {
    pump();
  }
}

void EventHubsSink::Impl::on_message(proton::delivery& d, proton::message& m) {
  if (cbs_.owns(d.receiver())) cbs_.on_message(m);
}

void EventHubsSink::Impl::on_tracker_accept(proton::tracker& t) {
  const auto it = in_flight_.find(t);
  if (it == in_flight_.end()) return;  // a CBS request, or a delivery of a connection given up on
  Item item = std::move(it->second.item);
  in_flight_.erase(it);
  // An accepted event, not a successful attach, proves the path works: a link that attaches and then
  // never answers must see its reconnect delay grow.
  backoff_.reset();
  complete(item, Outcome::Accepted, {});
  pump();
}

void EventHubsSink::Impl::on_tracker_reject(proton::tracker& t) {
  const auto it = in_flight_.find(t);
  if (it == in_flight_.end()) return;
  Item item = std::move(it->second.item);
  in_flight_.erase(it);
  const RemoteCondition condition = remote_rejection(t);
  const AmqpErrorKind kind = classify_amqp_condition(condition.name);
  const std::string reason =
      fmt::format("rejected by Event Hubs: {}", describe_condition(condition.name, condition.description));
  milliseconds retry_after{0};
  if (kind == AmqpErrorKind::ServerBusy) retry_after = server_busy_delay(backoff_.unit_random());
  if (kind == AmqpErrorKind::Configuration) {
    logger().error("eventhubs_event_refused",
                   where({{"entry_id", item.batch->events[item.index].entry_id}, {"error", reason}}));
  }
  complete(item, outcome_for(kind), reason, retry_after);
  pump();
}

void EventHubsSink::Impl::on_tracker_release(proton::tracker& t) {
  const auto it = in_flight_.find(t);
  if (it == in_flight_.end()) return;
  Item item = std::move(it->second.item);
  in_flight_.erase(it);
  complete(item, Outcome::Retry, "released by Event Hubs without processing");
  pump();
}

void EventHubsSink::Impl::complete(const Item& item, Outcome outcome, std::string reason,
                                   milliseconds retry_after) {
  BatchState& batch = *item.batch;
  batch.ready.push_back(Completion{item.index, outcome, std::move(reason), retry_after});
  if (!batch.listed) {
    batch.listed = true;
    to_flush_.push_back(item.batch);
  }
  if (!flush_scheduled_) {
    // Completions gather until Proton's current burst of events is handled, then go out one callback
    // per batch: the pipeline takes a lock per call, not per event.
    flush_scheduled_ = true;
    post([this] {
      flush_completions();
      if (draining_ && in_flight_.empty()) finish();
    });
  }
}

void EventHubsSink::Impl::flush_completions() {
  flush_scheduled_ = false;
  std::vector<std::shared_ptr<BatchState>> batches;
  batches.swap(to_flush_);
  for (auto& batch : batches) {
    batch->listed = false;
    std::vector<Completion> completions;
    completions.swap(batch->ready);
    if (finished_ || completions.empty()) continue;
    try {
      batch->done(std::move(completions));
    } catch (const std::exception& e) {
      logger().error("eventhubs_completion_callback_failed", {{"error", e.what()}});
    }
  }
}

// ============================================================ container thread: timers and stop

void EventHubsSink::Impl::tick() {
  if (container_stopped_) return;
  // Short enough for the tests' timeouts and a prompt stop(); the work per tick is a few comparisons
  // and one pass over at most max_in_flight_events deliveries.
  container_.schedule(proton::duration(100), [this] {
    tick();
    wake_connection();
  });
  const auto now = Clock::now();
  if (finished_) {
    if (container_stop_at_ && now >= *container_stop_at_) stop_container();
    return;
  }
  if (grace_ends_at_ && now >= *grace_ends_at_) {
    finish();
    return;
  }
  if (reconnect_at_ && now >= *reconnect_at_) connect();
  const auto wall_now = std::chrono::system_clock::now();
  if (renew_at_ && wall_now >= *renew_at_ && phase_ == Phase::Ready) {
    renew_at_.reset();
    authorize(true);
  }
  if (warn_expiry_at_ && wall_now >= *warn_expiry_at_) {
    warn_expiry_at_.reset();
    logger().warn("eventhubs_token_expiring",
                  where({{"expires_in_s",
                          std::chrono::duration_cast<std::chrono::seconds>(token_expiry_ - wall_now).count()},
                         {"hint",
                          "the connection string carries a SharedAccessSignature, which cannot be "
                          "renewed; use SharedAccessKey or a fresh token"}}));
  }
  if (phase_ != Phase::Idle) cbs_.expire(now, options_.operation_timeout);
  if ((phase_ == Phase::Connecting || phase_ == Phase::Attaching) &&
      now - phase_since_ >= options_.operation_timeout) {
    connection_failed(
        "com.microsoft:timeout",
        fmt::format("no {} within {} ms", phase_ == Phase::Connecting ? "AMQP open" : "link attach",
                    options_.operation_timeout.count()));
  }
  if (phase_ == Phase::Ready && std::any_of(in_flight_.begin(), in_flight_.end(), [&](const auto& entry) {
        return now - entry.second.sent_at >= options_.operation_timeout;
      })) {
    // A delivery nobody answers means a link or connection that is stuck: start over, send again.
    connection_failed("com.microsoft:timeout",
                      fmt::format("no disposition within {} ms", options_.operation_timeout.count()));
  }
}

void EventHubsSink::Impl::stop_container() {
  if (container_stopped_) return;
  container_stopped_ = true;
  container_.stop();
}

void EventHubsSink::Impl::begin_stop(milliseconds grace) {
  draining_ = true;
  drain_inbox();  // batches still in the inbox are never sent: they stay pending in Redis
  logger().info("eventhubs_stopping", where({{"in_flight", in_flight_.size()}, {"queued", queue_.size()}}));
  if (in_flight_.empty()) {
    finish();
    return;
  }
  grace_ends_at_ = Clock::now() + grace;
}

void EventHubsSink::Impl::finish() {
  if (finished_) return;
  flush_completions();  // what was confirmed before stop() returns is still reported
  finished_ = true;
  ready_.store(false, std::memory_order_release);
  logger().info("eventhubs_stopped", where({{"unconfirmed", in_flight_.size() + queue_.size()}}));
  in_flight_.clear();
  queue_.clear();
  to_flush_.clear();
  phase_ = Phase::Idle;
  proton::connection old = connection_;
  connection_ = proton::connection();
  sender_ = proton::sender();
  cbs_.reset();
  if (old && old.active()) {
    // Close politely, stop the container when the transport is done (or after a second at most).
    old.close();
    old.wake();
    container_stop_at_ = Clock::now() + milliseconds(1000);
    return;
  }
  stop_container();
}

// ============================================================ the public face

EventHubsSink::EventHubsSink(EventHubsSinkOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
EventHubsSink::~EventHubsSink() { impl_->stop(milliseconds(0)); }
void EventHubsSink::start() { impl_->start(); }
void EventHubsSink::send(Batch batch, CompletionCallback done) {
  impl_->send(std::move(batch), std::move(done));
}
void EventHubsSink::stop(std::chrono::milliseconds grace) { impl_->stop(grace); }
std::size_t EventHubsSink::max_event_bytes() const { return impl_->max_event_bytes(); }
bool EventHubsSink::ready() const { return impl_->ready(); }

}  // namespace connector
