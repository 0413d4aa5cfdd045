#include "eventhubs/eventhubs_connection.hpp"

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>
#include <cassert>
#include <proton/connection_options.hpp>
#include <proton/delivery.hpp>
#include <proton/error_condition.hpp>
#include <proton/receiver.hpp>
#include <proton/sender_options.hpp>
#include <proton/target.hpp>
#include <proton/target_options.hpp>
#include <proton/tracker.hpp>
#include <proton/transport.hpp>
#include <random>

#include "common/errors.hpp"
#include "common/startup_attempts.hpp"
#include "eventhubs/amqp_errors.hpp"
#include "eventhubs/batch_format_stamp.hpp"
#include "eventhubs/message_builder.hpp"
#include "eventhubs/proton_internals.hpp"
#include "observability/logger.hpp"
#include "observability/metrics.hpp"

namespace connector {

namespace {

using std::chrono::milliseconds;

// The one timer: every deadline is checked on this tick, and so are Proton's heartbeats and the peer's
// idle timeout (the loop lets each connection work after it). The work per tick is a few comparisons.
constexpr milliseconds kTick{100};
// How long a closing connection may wait for the peer's close frame once the grace period is over:
// stop() returns within grace + kStopSlack + kTick, even when the peer never answers.
constexpr milliseconds kStopSlack{200};
// A polite close that starts within the grace period waits at most this long for the peer.
constexpr milliseconds kCloseLinger{1000};

}  // namespace

EventHubsConnection::EventHubsConnection(EventHubsSinkOptions options, SpentBatches* spent)
    : options_(std::move(options)),
      loop_(amqp_path_options(options_)),
      target_(options_.partition_id ? fmt::format("{}/Partitions/{}", options_.hub, *options_.partition_id)
                                    : options_.hub),
      audience_(fmt::format("sb://{}/{}", options_.connection.host, target_)),
      endpoint_(fmt::format("{}:{}", loop_.options().host, loop_.options().port)),
      tokens_(options_.entra_tokens ? TokenSource(options_.entra_tokens)
                                    : TokenSource(options_.connection, options_.token_lifetime)),
      max_message_size_(options_.fallback_max_message_size),
      backoff_({options_.retry_delay, options_.max_retry_delay}, std::random_device{}()),
      tracker_(
          options_.max_in_flight_events, [this] { post([this] { flush_completions(); }); },
          std::max<std::size_t>(1, options_.sender_links), options_.batching && !options_.partition_id,
          spent) {
  if (options_.hub.empty()) {
    throw EventHubsError("no Event Hub name: set EVENT_HUB_NAME or EntityPath in the connection string");
  }
}

EventHubsConnection::~EventHubsConnection() {
  if (thread_.joinable()) {
    post([this] { abort(); });
    thread_.join();
  }
}

nlohmann::json EventHubsConnection::where(nlohmann::json extra) const {
  extra["endpoint"] = endpoint_;
  extra["hub"] = target_;
  if (options_.websocket) extra["websocket"] = loop_.describe();
  return extra;
}

std::string EventHubsConnection::describe() const {
  return fmt::format("Event Hubs at {} (hub '{}')", endpoint_, target_);
}

// ============================================================ any thread

void EventHubsConnection::run(StartResult started) {
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "eventhubs");
    loop_.run();
  });
  post([this, started = std::move(started)]() mutable {
    started_ = std::move(started);
    deadline_ = Clock::now();  // Backoff with its deadline now: the first tick connects
    tick();
  });
}

// The loop writes every connection's frames after the work it runs, so work posted here needs no wake.
void EventHubsConnection::post(std::function<void()> fn) { loop_.post(std::move(fn)); }

void EventHubsConnection::join() {
  if (thread_.joinable()) thread_.join();
  ready_.store(false, std::memory_order_release);
}

// ============================================================ the state machine

void EventHubsConnection::tick() {
  if (state_ == State::Stopped) return;
  loop_.schedule(kTick, [this] { tick(); });
  const auto now = Clock::now();
  switch (state_) {
    case State::Connecting:
    case State::Authorizing:
    case State::Attaching:
      cbs_.expire(now, options_.operation_timeout);  // may fail the connection (status 0)
      if (now >= deadline_ && has_connection())
        transport_failed("com.microsoft:timeout", setup_timeout_text());
      break;
    case State::Ready:
      check_token(std::chrono::system_clock::now());
      cbs_.expire(now, options_.operation_timeout);
      if (state_ == State::Ready && tracker_.waiting_since_before(now - options_.operation_timeout)) {
        // A delivery nobody answers means a stuck link or a vanished flow: start over, send again.
        connection_failed("com.microsoft:timeout",
                          fmt::format("no disposition within {} ms", options_.operation_timeout.count()));
      }
      break;
    case State::Backoff:
      check_token(std::chrono::system_clock::now());
      if (now >= deadline_) connect();
      break;
    case State::Draining:
      if (now >= deadline_) finish(deadline_);
      break;
    case State::Closing:
      if (now >= deadline_) stop_loop();
      break;
    case State::Stopped:
      break;
  }
}

void EventHubsConnection::connect() {
  ++generation_;
  state_ = State::Connecting;
  deadline_ = Clock::now() + options_.connect_timeout;
  proton::connection_options opts(*this);
  // Proton sends heartbeats to keep the peer's idle timer quiet and closes the transport with
  // "local-idle-timeout expired" when the peer sends nothing for this long: a vanished flow.
  opts.idle_timeout(proton::duration(options_.idle_timeout.count()))
      .virtual_host(options_.connection.host)  // Open and SASL name the namespace
      .sasl_enabled(true)
      .sasl_allowed_mechs("ANONYMOUS");
  // TLS (and the WebSocket, and the proxy) is the loop's way, so Proton is given no TLS options.
  try {
    connection_ = loop_.connect(opts);
  } catch (const std::exception& e) {
    connection_failed("amqp:connection:framing-error", e.what());
  }
}

void EventHubsConnection::on_connection_open(proton::connection& c) {
  if (!is_current(c) || state_ != State::Connecting) return;
  state_ = State::Authorizing;
  cbs_.open(c, fmt::format("cbs-reply-{}", generation_));
  authorize(false);
}

void EventHubsConnection::authorize(bool renewal) {
  const auto issued = std::chrono::system_clock::now();
  SasToken token = tokens_.token_for(audience_, issued);
  const std::uint64_t generation = generation_;
  const auto expiry = token.expiry;
  cbs_.put_token(
      audience_, token.value, expiry,
      [this, renewal, generation, issued, expiry](const CbsReply& reply) {
        if (generation != generation_ || !has_connection()) return;
        if (reply.ok) {
          on_authorized(renewal, issued, expiry);
          return;
        }
        const std::string condition = reply.status == 401   ? "amqp:unauthorized-access"
                                      : reply.status == 404 ? "amqp:not-found"
                                      : reply.status == 0   ? "com.microsoft:timeout"
                                                            : "amqp:internal-error";
        if (renewal) {
          logger().error("eventhubs_token_renewal_failed",
                         where({{"status", reply.status}, {"error", reply.description}}));
        }
        connection_failed(condition, reply.status == 0 ? reply.description
                                                       : fmt::format("put-token status {}: {}", reply.status,
                                                                     reply.description));
      },
      tokens_.token_type());
}

void EventHubsConnection::on_authorized(bool renewal, std::chrono::system_clock::time_point issued,
                                        std::chrono::system_clock::time_point expiry) {
  if (renewal) {
    logger().debug("eventhubs_token_renewed", where());
  } else {
    open_event_sender();
  }
  token_expiry_ = expiry;
  metrics().set_token_expiry(expiry);
  if (tokens_.renewable()) {
    renew_at_ = tokens_.renewal_time(issued, expiry);
  } else if (!renewal && !warn_expiry_at_) {
    warn_expiry_at_ = expiry_warning_time(std::chrono::system_clock::now(), expiry);
  }
}

// One link per lane: the service answers each link's deliveries in order and grants each its own
// credit, so across a long round trip several links keep more events in flight than one.
void EventHubsConnection::open_event_sender() {
  state_ = State::Attaching;
  proton::sender_options opts;
  // Unsettled sends with the receiver settling first: an Accepted disposition is the confirmation.
  opts.delivery_mode(proton::delivery_mode::AT_LEAST_ONCE).target(proton::target_options().address(target_));
  senders_.clear();
  links_.clear();
  attached_ = 0;
  for (std::size_t lane = 0; lane < tracker_.lanes(); ++lane) {
    senders_.push_back(connection_.open_sender(target_, opts));
    links_.push_back(link_identity(senders_.back()));
  }
}

void EventHubsConnection::on_sender_open(proton::sender& s) {
  if (state_ != State::Attaching || !lane_of(s)) return;
  // A refused attach comes back with no target, followed by a detach carrying the error.
  if (s.target().address().empty()) return;
  const std::size_t size = remote_max_message_size(s).value_or(options_.fallback_max_message_size);
  link_max_message_size_ = attached_ == 0 ? size : std::min(link_max_message_size_, size);
  if (++attached_ < senders_.size()) return;
  max_message_size_.store(link_max_message_size_, std::memory_order_relaxed);
  state_ = State::Ready;
  ready_.store(true, std::memory_order_release);
  logger().info("eventhubs_connected",
                where({{"max_message_size", link_max_message_size_}, {"sender_links", senders_.size()}}));
  report_start(std::nullopt);
  pump();
}

std::optional<std::size_t> EventHubsConnection::lane_of(const proton::sender& sender) const {
  const LinkIdentity link = link_identity(sender);
  for (std::size_t lane = 0; lane < links_.size(); ++lane) {
    if (links_[lane] == link) return lane;
  }
  return std::nullopt;
}

void EventHubsConnection::check_token(std::chrono::system_clock::time_point now) {
  if (state_ == State::Ready && renew_at_ && now >= *renew_at_) {
    renew_at_.reset();
    authorize(true);
  }
  if (warn_expiry_at_ && now >= *warn_expiry_at_) {
    warn_expiry_at_.reset();
    logger().warn("eventhubs_token_expiring",
                  where({{"expires_in_s",
                          std::chrono::duration_cast<std::chrono::seconds>(token_expiry_ - now).count()},
                         {"hint",
                          "the connection string carries a SharedAccessSignature, which cannot be "
                          "renewed; use SharedAccessKey or a fresh token"}}));
  }
}

bool EventHubsConnection::has_connection() const {
  switch (state_) {
    case State::Connecting:
    case State::Authorizing:
    case State::Attaching:
    case State::Ready:
    case State::Draining:
      return true;
    case State::Backoff:
    case State::Closing:
    case State::Stopped:
      return false;
  }
  return false;
}

std::string EventHubsConnection::setup_timeout_text() const {
  // A port that accepts and never answers (or a peer that stops halfway) must not hold start() for the
  // idle or operation timeout.
  const char* missing = state_ == State::Connecting    ? "AMQP open"
                        : state_ == State::Authorizing ? "CBS put-token reply"
                                                       : "link attach";
  return fmt::format(
      "no {} within {} ms of connecting (the endpoint took the connection or let it hang, but did not "
      "answer as Event Hubs)",
      missing, options_.connect_timeout.count());
}

// ============================================================ failures and reconnects

void EventHubsConnection::connection_failed(const std::string& condition, const std::string& description) {
  const State failed_in = state_;
  switch (state_) {
    case State::Connecting:
    case State::Authorizing:
    case State::Attaching:
    case State::Ready:
      break;
    case State::Draining:  // stopping anyway: what is unanswered stays unreported
      release_connection();
      finish(Clock::now());
      return;
    case State::Backoff:  // no connection of ours: an old one's late news
    case State::Closing:
    case State::Stopped:
      return;
  }
  release_connection();
  const std::size_t resent = tracker_.requeue();
  metrics().retried(cause_of_lost_connection(condition)).inc(resent);
  if (started_) {
    startup_failed(condition, description);
    return;
  }
  schedule_reconnect(failed_in, condition, description);
}

// A failure before the first connection was ready: wrong credentials or hub stop startup at once; a
// connection the service or the network dropped while it was set up is tried again, up to
// startup_attempts in all. A setup that timed out is not: its connect_timeout was the budget.
void EventHubsConnection::startup_failed(const std::string& condition, const std::string& description) {
  ++startup_failures_;
  const bool again = startup_failures_ < options_.startup_attempts &&
                     classify_connection_failure(condition, description) != AmqpErrorKind::Configuration &&
                     condition != "com.microsoft:timeout";
  nlohmann::json fields = where({{"error", describe_condition(condition, description)},
                                 {"attempt", startup_failures_},
                                 {"of", options_.startup_attempts}});
  if (again) {
    logger().warn("eventhubs_connect_failed", fields);
    state_ = State::Backoff;
    deadline_ = Clock::now() + std::min(backoff_.next(), kStartupAttemptPause);
    return;
  }
  logger().error("eventhubs_connect_failed", fields);
  report_start(startup_error(condition, description));
  finish(Clock::now());
}

void EventHubsConnection::transport_failed(const std::string& condition, const std::string& description) {
  if (auto why = loop_.problem()) return connection_failed({}, *why);
  connection_failed(condition, description);
}

void EventHubsConnection::schedule_reconnect(State failed_in, const std::string& condition,
                                             const std::string& description) {
  const AmqpErrorKind kind = classify_connection_failure(condition, description);
  milliseconds delay = backoff_.next();
  nlohmann::json fields = where();
  fields.update({{"error", describe_condition(condition, description)},
                 {"phase", failed_in == State::Ready ? "ready" : "connecting"},
                 {"unconfirmed", tracker_.queued()}});
  if (kind == AmqpErrorKind::Configuration) {
    // Credentials or the hub changed under us: nothing gets better quickly, so retry at the slow end.
    delay = options_.max_retry_delay;
    logger().error("eventhubs_configuration_error", fields);
  } else if (kind == AmqpErrorKind::ServerBusy) {
    delay += server_busy_delay(backoff_.unit_random());
  }
  fields.update({{"attempt", backoff_.attempts()}, {"delay_ms", delay.count()}});
  logger().warn("eventhubs_reconnect", fields);
  state_ = State::Backoff;
  deadline_ = Clock::now() + delay;
}

// Forgets the current connection (closing it politely when it is still open); the caller sets the state.
void EventHubsConnection::release_connection() {
  ready_.store(false, std::memory_order_release);
  renew_at_.reset();
  proton::connection old = connection_;
  connection_ = proton::connection();
  senders_.clear();
  links_.clear();
  attached_ = 0;
  cbs_.reset();
  if (old && old.active()) {
    try {
      old.close();  // the loop writes the close frame once this work is done
    } catch (const std::exception&) {
      // The transport may already be gone; closing is only a courtesy to the peer.
    }
  }
}

std::string EventHubsConnection::startup_error(const std::string& condition,
                                               const std::string& description) const {
  const std::string what = describe_condition(condition, description);
  if (condition.empty()) {  // the way's own reason (transport_failed): it says what to check
    return fmt::format("could not connect to Event Hubs at {} (hub '{}'){}: {}", endpoint_, target_,
                       options_.websocket ? " over WebSockets" : "", description);
  }
  switch (classify_connection_failure(condition, description)) {
    case AmqpErrorKind::Configuration:
      if (condition == "amqp:unauthorized-access" && options_.entra_tokens) {
        return fmt::format(
            "Event Hubs at {} refused the Microsoft Entra ID token for hub '{}' (unauthorized: {}); check "
            "that the identity has the Azure Event Hubs Data Sender role on the hub or its namespace",
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

void EventHubsConnection::report_start(std::optional<std::string> error) {
  if (!started_) return;
  StartResult started = std::move(started_);
  started_ = nullptr;
  started(std::move(error));
}

void EventHubsConnection::on_connection_close(proton::connection& c) {
  if (is_current(c)) connection_failed("amqp:connection:forced", "the service closed the connection");
}
void EventHubsConnection::on_connection_error(proton::connection& c) {
  if (is_current(c)) connection_failed(c.error().name(), c.error().description());
}
void EventHubsConnection::on_session_error(proton::session& s) {
  if (is_current(s.connection())) connection_failed(s.error().name(), s.error().description());
}
void EventHubsConnection::on_transport_error(proton::transport& t) {
  if (is_current(t.connection())) transport_failed(t.error().name(), t.error().description());
  if (state_ == State::Closing) stop_loop();
}
void EventHubsConnection::on_transport_close(proton::transport& t) {
  if (is_current(t.connection())) transport_failed("amqp:connection:forced", "the connection was closed");
  if (state_ == State::Closing) stop_loop();
}
void EventHubsConnection::on_sender_error(proton::sender& s) {
  if (is_current(s.connection()) && (lane_of(s) || cbs_.owns(s))) {
    connection_failed(s.error().name(), s.error().description());
  }
}
void EventHubsConnection::on_sender_close(proton::sender& s) {
  if (is_current(s.connection()) && (lane_of(s) || cbs_.owns(s))) {
    connection_failed("amqp:link:detach-forced", "the service detached the link");
  }
}
void EventHubsConnection::on_receiver_error(proton::receiver& r) {
  if (is_current(r.connection()) && cbs_.owns(r))
    connection_failed(r.error().name(), r.error().description());
}
void EventHubsConnection::on_receiver_close(proton::receiver& r) {
  if (is_current(r.connection()) && cbs_.owns(r)) {
    connection_failed("amqp:link:detach-forced", "the service detached the $cbs link");
  }
}
void EventHubsConnection::on_error(const proton::error_condition& e) {
  // Every specific error handler is overridden; this only catches what Proton reports otherwise.
  logger().warn("eventhubs_amqp_error", where({{"error", describe_condition(e.name(), e.description())}}));
}

// ============================================================ sending

void EventHubsConnection::add(PendingBatches batches) {
  switch (state_) {
    case State::Closing:
    case State::Stopped:
      return;  // never reported: they stay pending in Redis
    default:
      break;
  }
  for (auto& [batch, done] : batches) tracker_.add(std::move(batch), std::move(done));
  pump();
}

void EventHubsConnection::pump() {
  for (std::size_t lane = 0; lane < senders_.size(); ++lane) pump(lane);
}

void EventHubsConnection::pump(std::size_t lane) {
  if (state_ != State::Ready) return;
  proton::sender& sender = senders_[lane];
  const auto now = Clock::now();  // one clock read per burst: the operation timeout is 60 s
  for (int credit = sender.credit(); credit > 0; --credit) {
    const Event* event = tracker_.next(lane);
    if (event == nullptr) break;
    encode_event_head(*event, with_partition_key(), scratch_);
    const std::size_t size = scratch_.size() + event->body.size();
    if (size > link_max_message_size_) {
      tracker_.complete_next(Outcome::Reject, Cause::TooLarge,
                             fmt::format("event of {} bytes exceeds the Event Hub's maximum message size of {} bytes",
                                         size, link_max_message_size_),
                             lane);
      ++credit;  // nothing was sent
      continue;
    }
    if (batch_worthwhile(lane, *event, size)) {
      send_batch(sender, lane, now);
      continue;
    }
    // Each send carries its DeliveryId as the AMQP delivery tag, so an answer names its event directly.
    // The body goes to Proton straight from the event, which stays in its batch while it is on the wire.
    const DeliveryId id = tracker_.sent(now, lane);
    send_encoded(sender, id, scratch_, event->body);
  }
}

// A batch costs the service one delivery for many events; one event goes as an ordinary message (the
// service takes both). An event of a refused batch goes alone, so that only the bad one is refused.
// Leaves the envelope's head in envelope_ when the answer is yes.
bool EventHubsConnection::batch_worthwhile(std::size_t lane, const Event& first, std::size_t first_size) {
  if (!options_.batching || tracker_.goes_alone(lane) || tracker_.room() < 2) return false;
  const Event* second = tracker_.waiting(lane, 1);
  if (second == nullptr || !same_batch(first, *second) || tracker_.goes_alone(lane, 1)) return false;
  encode_batch_envelope_head(first.partition_key, with_partition_key(), envelope_);
  return envelope_.size() + batch_section_overhead(first_size) + first_size <= link_max_message_size_;
}

bool EventHubsConnection::same_batch(const Event& a, const Event& b) const {
  return !with_partition_key() || a.partition_key == b.partition_key;
}

// Packs the waiting events of `lane` with the front event's partition key into one delivery, in order,
// until the link's max-message-size, the room on the wire or the events run out. scratch_ holds the
// front event's encoding but its body. The delivery's tag carries kBatchTagBit: the loop's stamp sets the
// batch message format on its transfer frames (Proton writes 0 and has no way to say otherwise).
void EventHubsConnection::send_batch(proton::sender& sender, std::size_t lane, Clock::time_point now) {
  const Event& first = *tracker_.waiting(lane, 0);
  const DeliveryId id = tracker_.next_id();
  begin_delivery(sender, id | kBatchTagBit);
  append_to_delivery(sender, envelope_);
  std::size_t size = envelope_.size();
  std::size_t count = 0;
  const std::size_t room = tracker_.room();
  for (const Event* event = &first; event != nullptr && count < room; event = tracker_.waiting(lane, count)) {
    if (count > 0) {
      if (!same_batch(first, *event) || tracker_.goes_alone(lane, count)) break;
      encode_event_head(*event, with_partition_key(), scratch_);
    }
    const std::size_t event_size = scratch_.size() + event->body.size();
    const std::size_t added = batch_section_overhead(event_size) + event_size;
    // An event that fits no batch is refused when it reaches the front (pump()).
    if (count > 0 && size + added > link_max_message_size_) break;
    encode_batch_section_header(event_size, section_);
    append_to_delivery(sender, section_);
    append_to_delivery(sender, scratch_);
    append_to_delivery(sender, event->body);
    size += added;
    ++count;
  }
  end_delivery(sender);
  const DeliveryId sent = tracker_.sent(now, lane, count);
  assert(sent == id);
  (void)sent;
}

void EventHubsConnection::on_sendable(proton::sender& s) {
  if (cbs_.owns(s)) {
    cbs_.on_sendable();
  } else if (const auto lane = lane_of(s)) {
    pump(*lane);
  }
}

void EventHubsConnection::on_message(proton::delivery& d, proton::message& m) {
  if (cbs_.owns(d.receiver())) cbs_.on_message(m);
}

// Only the event senders' deliveries carry a DeliveryId (CBS requests have tags of their own), and a
// sender given up on is no longer in senders_.
std::optional<DeliveryId> EventHubsConnection::delivery_id(const proton::tracker& tracker) const {
  const TagOnLink tag = tag_number(tracker);
  if (!tag.number || std::find(links_.begin(), links_.end(), tag.link) == links_.end()) return std::nullopt;
  return *tag.number & ~kBatchTagBit;
}

void EventHubsConnection::settle(proton::tracker& tracker, Outcome outcome, Cause cause, std::string reason,
                                 milliseconds retry_after) {
  const auto id = delivery_id(tracker);
  if (!id || !tracker_.settle(*id, outcome, std::move(reason), retry_after, cause)) return;
  // An accepted event, not a successful attach, proves the path works: a link that attaches and then
  // never answers must see its reconnect delay grow.
  if (outcome == Outcome::Accepted) backoff_.reset();
  // The room this answer made is filled by flush_completions(), which the tracker has asked for: once
  // per burst of answers, not once per answer.
}

void EventHubsConnection::on_tracker_accept(proton::tracker& t) {
  settle(t, Outcome::Accepted, Cause::None, {});
}

void EventHubsConnection::on_tracker_reject(proton::tracker& t) {
  const RemoteCondition condition = remote_rejection(t);
  const AmqpErrorKind kind = classify_amqp_condition(condition.name);
  const std::string reason =
      fmt::format("rejected by Event Hubs: {}", describe_condition(condition.name, condition.description));
  milliseconds retry_after{0};
  if (kind == AmqpErrorKind::ServerBusy) retry_after = server_busy_delay(backoff_.unit_random());
  const auto id = delivery_id(t);
  const std::size_t events = id ? tracker_.events_in(*id) : 0;
  if (outcome_for(kind) == Outcome::Reject && events > 1) {
    // One delivery, one outcome: which event the service refused is not said. Each goes again alone,
    // so that only the one at fault is refused (and dead-lettered), never its neighbours.
    logger().warn("eventhubs_batch_rejected", where({{"events", events}, {"error", reason}}));
    tracker_.split(*id);
    metrics().retried(Cause::Rejected).inc(events);
    pump();  // nothing completed, so no flush will: the events go again now
    return;
  }
  const Event* event = id ? tracker_.event(*id) : nullptr;
  if (kind == AmqpErrorKind::Configuration && event != nullptr) {
    logger().error("eventhubs_event_refused", where({{"entry_id", event->entry_id}, {"error", reason}}));
  }
  settle(t, outcome_for(kind), cause_of_condition(condition.name, Cause::Rejected), reason, retry_after);
}

void EventHubsConnection::on_tracker_release(proton::tracker& t) {
  settle(t, Outcome::Retry, Cause::Rejected, "released by Event Hubs without processing");
}

// Completions gather until Proton's current burst of events is handled, then go out one callback per
// batch: the pipeline takes a lock per call, not per event.
void EventHubsConnection::flush_completions() {
  tracker_.flush();
  if (state_ == State::Draining && tracker_.in_flight() == 0) finish(Clock::now());
  pump();  // room on the wire is shared by every lane; credit is each link's own
}

// ============================================================ stopping

void EventHubsConnection::stop(milliseconds grace) {
  const auto stop_deadline = Clock::now() + grace;
  logger().info("eventhubs_stopping",
                where({{"in_flight", tracker_.in_flight()}, {"queued", tracker_.queued()}}));
  switch (state_) {
    case State::Ready:
      if (tracker_.in_flight() > 0 && grace > milliseconds(0)) {
        state_ = State::Draining;
        deadline_ = stop_deadline;
        return;
      }
      finish(stop_deadline);
      return;
    case State::Connecting:
    case State::Authorizing:
    case State::Attaching:
    case State::Backoff:
      finish(stop_deadline);  // nothing is on the wire outside Ready
      return;
    case State::Draining:
    case State::Closing:
    case State::Stopped:
      return;
  }
}

void EventHubsConnection::abort() { finish(Clock::now()); }

// Reports what was confirmed, forgets the rest, and closes; the loop stops when the transport is done or
// at the close deadline, whichever is first.
void EventHubsConnection::finish(Clock::time_point stop_deadline) {
  if (state_ == State::Closing || state_ == State::Stopped) return;
  tracker_.flush();  // what was confirmed before stop() returns is still reported
  const std::size_t unconfirmed = tracker_.abandon();
  report_start("the Event Hubs sink was stopped before it connected");
  logger().info("eventhubs_stopped", where({{"unconfirmed", unconfirmed}}));
  const bool was_open = connection_ && connection_.active();
  release_connection();
  state_ = State::Closing;
  if (!was_open) {
    stop_loop();
    return;
  }
  // A peer that cannot answer must not hold stop() beyond its grace period (plus a small slack).
  const auto now = Clock::now();
  deadline_ = std::min(now + kCloseLinger, std::max(now, stop_deadline) + kStopSlack);
}

void EventHubsConnection::stop_loop() {
  if (state_ == State::Stopped) return;
  state_ = State::Stopped;
  ready_.store(false, std::memory_order_release);
  loop_.stop();
}

}  // namespace connector
