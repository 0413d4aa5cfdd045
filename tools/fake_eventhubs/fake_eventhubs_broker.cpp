#include "fake_eventhubs_broker.hpp"

#include <algorithm>
#include <cstdio>
#include <proton/annotation_key.hpp>
#include <proton/binary.hpp>
#include <proton/codec/map.hpp>
#include <proton/codec/vector.hpp>
#include <proton/connection_options.hpp>
#include <proton/error_condition.hpp>
#include <proton/message_id.hpp>
#include <proton/receiver_options.hpp>
#include <proton/scalar.hpp>
#include <proton/sender_options.hpp>
#include <proton/session.hpp>
#include <proton/source.hpp>
#include <proton/ssl.hpp>
#include <proton/target.hpp>
#include <proton/timestamp.hpp>
#include <proton/tracker.hpp>
#include <proton/transport.hpp>
#include <proton/types.hpp>
#include <proton/work_queue.hpp>
#include <stdexcept>
#include <utility>

#include "core/json_writer.hpp"
#include "entity_path.hpp"
#include "eventhubs/sas_token.hpp"
#include "stand_ins/hs256_jwt.hpp"
#include "observability/logger.hpp"
#include "plain_event.hpp"
#include "proton_c_access.hpp"

namespace connector {

namespace {

const proton::duration kTickInterval(50);
const proton::duration kDropGrace(20);
constexpr const char* kServerBusy = "com.microsoft:server-busy";
constexpr const char* kUnauthorized = "amqp:unauthorized-access";
constexpr const char* kNotFound = "amqp:not-found";
constexpr const char* kSizeExceeded = "amqp:link:message-size-exceeded";

long long unix_seconds_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

long long unix_millis_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Text of an AMQP scalar or value (application properties are scalars, CBS and management bodies
// values); binary comes back as its bytes, anything unusual in Proton's text form.
template <typename AmqpValue>
std::string amqp_text(const AmqpValue& value) {
  switch (value.type()) {
    case proton::NULL_TYPE:
      return {};
    case proton::STRING:
      return proton::get<std::string>(value);
    case proton::SYMBOL:
      return proton::get<proton::symbol>(value);
    case proton::BINARY: {
      const auto bytes = proton::get<proton::binary>(value);
      return std::string(bytes.begin(), bytes.end());
    }
    default:
      return proton::to_string(value);
  }
}

std::string property_text(const proton::message& message, const std::string& name) {
  const auto& properties = message.properties();
  return properties.exists(name) ? amqp_text(properties.get(name)) : std::string{};
}

std::optional<std::string> id_text(const proton::message_id& id) {
  if (id.empty()) return std::nullopt;
  if (id.type() == proton::STRING) return proton::get<std::string>(id);
  return proton::to_string(id);
}

// Event Hubs attaches and then detaches with the error, so the client learns why.
template <typename Link>
void refuse_link(Link& link, const std::string& condition, const std::string& description) {
  link.open();
  link.close(proton::error_condition(condition, description));
}

// FNV-1a: any stable hash will do; the real service's assignment is not reproducible anyway.
std::uint64_t stable_hash(std::string_view text) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

}  // namespace

FakeEventHubsBroker::FakeEventHubsBroker(FakeEventHubsOptions options, BrokerSignals& signals)
    : options_(std::move(options)),
      signals_(signals),
      recorder_(options_.record_file),
      partitions_(static_cast<std::size_t>(options_.partitions)),
      created_at_ms_(unix_millis_now()) {}

int FakeEventHubsBroker::run() {
  proton::container container(*this, "fake-eventhubs");
  container_ = &container;
  container.run(options_.threads);
  container_ = nullptr;
  {
    std::lock_guard lock(websocket_mutex_);
    websocket_.reset();
  }
  std::lock_guard lock(records_mutex_);
  recorder_.flush();
  return exit_status_;
}

void FakeEventHubsBroker::on_container_start(proton::container& container) {
  const std::string address = options_.host + ":" + std::to_string(options_.port);
  listener_ = container.listen(address, listener_handler_);
  if (options_.websocket_port >= 0) websocket_hop_ = container.listen("127.0.0.1:0", websocket_hop_handler_);
  container.schedule(kTickInterval, [this] { tick(); });
}

void FakeEventHubsBroker::Listener::on_open(proton::listener& listener) {
  if (websocket_hop_) {
    // The WebSocket side starts once the hop it relays to is there.
    try {
      std::lock_guard lock(broker_.websocket_mutex_);
      broker_.websocket_ = std::make_unique<WebSocketListener>(WebSocketListener::Options{
          broker_.options_.host, broker_.options_.websocket_port, static_cast<std::uint16_t>(listener.port()),
          broker_.options_.tls_cert_file, broker_.options_.tls_key_file});
      broker_.websocket_->start();
      std::printf("fake-eventhubs websocket listening on %s:%d\n", broker_.options_.host.c_str(),
                  broker_.websocket_->port());
      std::fflush(stdout);
      logger().info("websocket_listening", {{"host", broker_.options_.host},
                                            {"port", broker_.websocket_->port()},
                                            {"tls", broker_.options_.tls()},
                                            {"amqp_port", listener.port()}});
    } catch (const std::exception& e) {
      on_error(listener, e.what());
    }
    return;
  }
  std::printf("fake-eventhubs listening on %s:%d\n", broker_.options_.host.c_str(), listener.port());
  std::fflush(stdout);
  logger().info("listening", {{"host", broker_.options_.host},
                              {"port", listener.port()},
                              {"tls", broker_.options_.tls()},
                              {"hub", broker_.options_.hub},
                              {"partitions", broker_.options_.partitions}});
}

proton::connection_options FakeEventHubsBroker::Listener::on_accept(proton::listener&) {
  proton::connection_options options;
  options.handler(broker_)
      .container_id("fake-eventhubs")
      // Event Hubs offers ANONYMOUS and then expects CBS; PLAIN is taken too (credentials ignored).
      .sasl_enabled(true)
      .sasl_allowed_mechs("ANONYMOUS PLAIN")
      .sasl_allow_insecure_mechs(true)
      // Proton sends heartbeats at half the peer's idle timeout and closes a peer that is silent longer
      // than ours; the SDKs ask for 60 s.
      .idle_timeout(proton::duration(120000));
  if (broker_.options_.tls() && !websocket_hop_) {
    options.ssl_server_options(proton::ssl_server_options(
        proton::ssl_certificate(broker_.options_.tls_cert_file, broker_.options_.tls_key_file)));
  }
  return options;
}

void FakeEventHubsBroker::Listener::on_error(proton::listener&, const std::string& what) {
  logger().fatal("listen_failed",
                 {{"host", broker_.options_.host},
                  {"port", websocket_hop_ ? broker_.options_.websocket_port : broker_.options_.port},
                  {"websocket", websocket_hop_},
                  {"error", what}});
  broker_.exit_status_ = 1;
  broker_.stopping_ = true;
  if (broker_.container_ != nullptr) broker_.container_->stop();
}

void FakeEventHubsBroker::tick() {
  if (stopping_) return;
  if (signals_.stop.exchange(false)) {
    shutdown();
    return;
  }
  const std::vector<proton::connection> connections = connection_list();
  if (signals_.drop_all.exchange(false)) {
    logger().info("fault_injected", {{"fault", "drop_all_connections"}, {"connections", connections.size()}});
    for (const auto& connection : connections) {
      in_context(connection, [this, connection](ConnectionState&) { schedule_drop(connection, "SIGUSR1"); });
    }
  }
  const bool flush_requested = signals_.flush.exchange(false);
  {
    std::lock_guard lock(records_mutex_);
    if (recorder_.dirty() || flush_requested) {
      if (!recorder_.flush()) logger().error("record_write_failed", {{"file", options_.record_file}});
      if (flush_requested) logger().info("record_flushed", counts());
    }
  }
  if (options_.token_lifetime_check) {
    for (const auto& connection : connections) {
      in_context(connection, [this](ConnectionState& state) { check_link_tokens(state); });
    }
  }
  container_->schedule(kTickInterval, [this] { tick(); });
}

// In the connection's context (see in_context), so Proton writes the detach at once.
void FakeEventHubsBroker::check_link_tokens(ConnectionState& state) {
  const long long now = unix_seconds_now();
  for (auto it = state.incoming.begin(); it != state.incoming.end();) {
    if (it->second.role == LinkRole::Events && grant_expiry(state, it->second.entity_path) <= now) {
      logger().warn("link_token_expired", {{"connection", state.id}, {"target", it->second.entity_path}});
      proton::receiver receiver = it->first;
      it = state.incoming.erase(it);
      receiver.close(proton::error_condition(kUnauthorized, "the token for this link has expired"));
    } else {
      ++it;
    }
  }
}

FakeEventHubsBroker::ConnectionState* FakeEventHubsBroker::state_of(const proton::connection& connection) {
  std::lock_guard lock(connections_mutex_);
  const auto found = connections_.find(connection);
  return found == connections_.end() ? nullptr : &found->second;  // map nodes do not move
}

std::vector<proton::connection> FakeEventHubsBroker::connection_list() {
  std::lock_guard lock(connections_mutex_);
  std::vector<proton::connection> out;
  for (const auto& [connection, state] : connections_) out.push_back(connection);
  return out;
}

// Timers run outside any connection's context and on any container thread: the work queue brings the
// call into the connection's context, and the state is looked up again there (it may be gone).
void FakeEventHubsBroker::in_context(const proton::connection& connection,
                                     std::function<void(ConnectionState&)> fn) {
  proton::connection target = connection;
  target.work_queue().add([this, connection, fn = std::move(fn)] {
    if (ConnectionState* state = state_of(connection)) fn(*state);
  });
}

// Tests and benchmarks read these from the log: how many deliveries came and how the accepted ones
// spread over the partitions (a batch is one delivery of many events).
nlohmann::json FakeEventHubsBroker::counts() const {
  nlohmann::json events = nlohmann::json::object();
  nlohmann::json deliveries = nlohmann::json::object();
  for (std::size_t i = 0; i < partitions_.size(); ++i) {
    events[std::to_string(i)] = partitions_[i].events;
    deliveries[std::to_string(i)] = partitions_[i].deliveries;
  }
  return {{"recorded", recorder_.recorded()},
          {"received", received_.load()},
          {"events_by_partition", std::move(events)},
          {"deliveries_by_partition", std::move(deliveries)}};
}

void FakeEventHubsBroker::shutdown() {
  stopping_ = true;
  {
    std::lock_guard lock(records_mutex_);
    nlohmann::json fields = counts();
    fields["connections"] = connection_list().size();
    logger().info("shutting_down", fields);
    if (!recorder_.flush()) logger().error("record_write_failed", {{"file", options_.record_file}});
  }
  listener_.stop();
  if (options_.websocket_port >= 0) {
    websocket_hop_.stop();
    std::lock_guard lock(websocket_mutex_);
    if (websocket_) websocket_->stop();
  }
  container_->stop();
}

void FakeEventHubsBroker::on_connection_open(proton::connection& connection) {
  ConnectionState* inserted = nullptr;
  {
    std::lock_guard lock(connections_mutex_);
    inserted = &connections_[connection];
  }
  ConnectionState& state = *inserted;
  state.id = next_connection_id_++;
  state.peer = remote_address(connection);
  logger().info("connection_opened", {{"connection", state.id},
                                      {"peer", state.peer},
                                      {"hostname", connection.virtual_host()},
                                      {"container_id", connection.container_id()}});
  connection.open();
  if (state.id <= static_cast<std::uint64_t>(options_.drop_first_connections)) {
    schedule_drop(connection, "--drop-first-connections");
  }
}

void FakeEventHubsBroker::on_session_open(proton::session& session) { session.open(); }

void FakeEventHubsBroker::on_receiver_open(proton::receiver& receiver) {
  ConnectionState* found = state_of(receiver.connection());
  if (found == nullptr) return;
  ConnectionState& state = *found;
  const std::string address = receiver.target().address();
  const auto options = proton::receiver_options().auto_accept(false);
  if (iequals(address, "$cbs") || iequals(address, "$management")) {
    const LinkRole role = iequals(address, "$cbs") ? LinkRole::Cbs : LinkRole::Management;
    state.incoming[receiver] = IncomingLink{role, normalized_entity_path(address), {}};
    receiver.open(proton::receiver_options(options).credit_window(100));
    logger().info("link_attached", {{"connection", state.id}, {"role", "request"}, {"target", address}});
    return;
  }
  const auto target = parse_event_target(address);
  if (!target || !iequals(target->hub, options_.hub)) {
    logger().warn("link_refused", {{"connection", state.id}, {"target", address}, {"condition", kNotFound}});
    refuse_link(receiver, kNotFound,
                "The messaging entity '" + address + "' could not be found (fake-eventhubs serves '" +
                    options_.hub + "').");
    return;
  }
  if (target->partition) {
    const std::string& id = *target->partition;
    const bool numeric =
        !id.empty() && id.size() < 6 && id.find_first_not_of("0123456789") == std::string::npos;
    if (!numeric || std::stoi(id) >= options_.partitions) {
      logger().warn("link_refused",
                    {{"connection", state.id}, {"target", address}, {"condition", kNotFound}});
      refuse_link(receiver, kNotFound, "Partition '" + id + "' does not exist in '" + options_.hub + "'.");
      return;
    }
  }
  const std::string path = normalized_entity_path(address);
  if (grant_expiry(state, path) <= unix_seconds_now()) {
    logger().warn("link_refused",
                  {{"connection", state.id}, {"target", address}, {"condition", kUnauthorized}});
    refuse_link(receiver, kUnauthorized,
                "No valid token for '" + address + "' was put on $cbs on this connection.");
    return;
  }
  state.incoming[receiver] =
      IncomingLink{LinkRole::Events, path,
                   target->partition ? std::to_string(std::stoi(*target->partition)) : std::string{}};
  set_link_max_message_size(receiver, options_.max_message_size);
  // Credit comes back with each disposition, not on receipt: at most --credit events of a link await
  // their answer, as with the service, so --delay-ms bounds a link's rate at credit / delay.
  receiver.open(proton::receiver_options(options).credit_window(0));
  receiver.add_credit(options_.credit);
  logger().info("link_attached", {{"connection", state.id},
                                  {"role", "events"},
                                  {"target", address},
                                  {"credit", options_.credit},
                                  {"max_message_size", options_.max_message_size}});
}

void FakeEventHubsBroker::on_sender_open(proton::sender& sender) {
  ConnectionState* found = state_of(sender.connection());
  if (found == nullptr) return;
  ConnectionState& state = *found;
  const std::string source = sender.source().address();
  if (!iequals(source, "$cbs") && !iequals(source, "$management")) {
    logger().warn("link_refused", {{"connection", state.id}, {"source", source}, {"condition", kNotFound}});
    refuse_link(sender, kNotFound, "fake-eventhubs cannot send from '" + source + "'.");
    return;
  }
  state.replies.push_back(ReplyLink{sender, sender.target().address(), sender.name()});
  sender.open();
  logger().info("link_attached", {{"connection", state.id},
                                  {"role", "reply"},
                                  {"source", source},
                                  {"reply_to", sender.target().address()}});
}

void FakeEventHubsBroker::on_receiver_close(proton::receiver& receiver) {
  if (ConnectionState* state = state_of(receiver.connection())) state->incoming.erase(receiver);
}

void FakeEventHubsBroker::on_sender_close(proton::sender& sender) {
  ConnectionState* state = state_of(sender.connection());
  if (state == nullptr) return;
  auto& replies = state->replies;
  std::erase_if(replies, [&](const ReplyLink& link) { return link.sender == sender; });
}

void FakeEventHubsBroker::on_connection_error(proton::connection& connection) {
  logger().info("connection_error", {{"error", connection.error().what()}});
}

void FakeEventHubsBroker::on_transport_error(proton::transport& transport) {
  logger().info("transport_error", {{"error", transport.error().what()}});
}

void FakeEventHubsBroker::on_transport_close(proton::transport& transport) {
  proton::connection connection = transport.connection();
  if (!connection) return;
  std::lock_guard lock(connections_mutex_);
  auto found = connections_.find(connection);
  if (found == connections_.end()) return;
  logger().info("connection_closed", {{"connection", found->second.id}, {"peer", found->second.peer}});
  connections_.erase(found);
}

void FakeEventHubsBroker::on_message(proton::delivery& delivery, proton::message& message) {
  ConnectionState* found = state_of(delivery.connection());
  if (found == nullptr) return;
  ConnectionState& state = *found;
  if (state.dropping) return;  // the socket is about to go: this delivery will never be settled
  const auto link = state.incoming.find(delivery.receiver());
  if (link == state.incoming.end()) {
    delivery.release();
    return;
  }
  switch (link->second.role) {
    case LinkRole::Cbs:
      delivery.accept();
      handle_put_token(state, message);
      break;
    case LinkRole::Management:
      delivery.accept();
      handle_management(state, message);
      break;
    case LinkRole::Events: {
      const IncomingLink target = link->second;
      handle_event(state, target, delivery, message);
      break;
    }
  }
}

long long FakeEventHubsBroker::grant_expiry(const ConnectionState& state,
                                            const std::string& entity_path) const {
  long long best = 0;
  for (const auto& [granted, expiry] : state.grants) {
    if (entity_path_covers(granted, entity_path)) best = std::max(best, expiry);
  }
  return best;
}

void FakeEventHubsBroker::reply(ConnectionState& state, const proton::message& request,
                                proton::message response) {
  const std::string reply_to = request.reply_to();
  response.correlation_id(request.id());
  for (auto& link : state.replies) {
    if (link.address == reply_to || (link.address.empty() && link.name == reply_to)) {
      response.to(reply_to);
      link.sender.send(response);
      return;
    }
  }
  // Like the service: a reply nobody listens for is dropped, and the client's request times out.
  logger().warn("reply_dropped", {{"connection", state.id}, {"reply_to", reply_to}});
}

void FakeEventHubsBroker::handle_put_token(ConnectionState& state, const proton::message& request) {
  const std::string operation = property_text(request, "operation");
  const std::string audience = property_text(request, "name");
  const std::string token = amqp_text(request.body());
  auto respond = [&](int status, const std::string& description) {
    proton::message response;
    response.properties().put("status-code", static_cast<std::int32_t>(status));
    response.properties().put("status-description", description);
    reply(state, request, std::move(response));
    logger().info(
        "cbs_put_token",
        {{"connection", state.id}, {"audience", audience}, {"status", status}, {"description", description}});
  };
  if (operation != "put-token") {
    respond(400, "unsupported $cbs operation '" + operation + "'");
    return;
  }
  const std::string path = normalized_entity_path(audience);
  const std::string hub_part = path.substr(0, path.find('/'));
  if (!hub_part.empty() && !iequals(hub_part, options_.hub)) {
    respond(404, "The messaging entity '" + audience + "' could not be found.");
    return;
  }
  if (property_text(request, "type") == "jwt") {
    // A Microsoft Entra ID access token: signed by the token service stand-in, for Event Hubs, unexpired.
    long long token_expiry = 0;
    const std::string refused =
        options_.jwt_key.empty()
            ? std::string("this fake-eventhubs takes no jwt tokens (start it with --jwt-key)")
            : verify_jwt_hs256(token, options_.jwt_key, "https://eventhubs.azure.net", std::chrono::system_clock::now(),
                               &token_expiry);
    if (!refused.empty()) {
      respond(401, "InvalidIssuer: the jwt token was refused: " + refused + ".");
      return;
    }
    long long& expiry = state.grants[path];
    expiry = std::max(expiry, token_expiry);
    respond(202, "Accepted");
    return;
  }
  SasTokenParts parts;
  const long long now = unix_seconds_now();
  if (!parse_sas_token(token, parts)) {
    respond(401, "InvalidSignature: the token is not a SharedAccessSignature.");
    return;
  }
  if (parts.expiry <= now) {
    respond(401, "ExpiredToken: the token has expired.");
    return;
  }
  if (parts.key_name != options_.key_name) {
    respond(401, "InvalidSignature: unknown shared access key name '" + parts.key_name + "'.");
    return;
  }
  if (!verify_sas_token(token, audience, options_.key_name, options_.key, std::chrono::system_clock::now())) {
    respond(401, "InvalidSignature: the token signature or audience does not match.");
    return;
  }
  long long& expiry = state.grants[path];
  expiry = std::max(expiry, parts.expiry);
  respond(202, "Accepted");
}

void FakeEventHubsBroker::handle_management(ConnectionState& state, const proton::message& request) {
  const std::string operation = property_text(request, "operation");
  const std::string type = property_text(request, "type");
  const std::string name = property_text(request, "name");
  auto respond = [&](int status, const std::string& description, proton::value body) {
    proton::message response;
    response.properties().put("status-code", static_cast<std::int32_t>(status));
    response.properties().put("status-description", description);
    response.body(std::move(body));
    reply(state, request, std::move(response));
    logger().info("management_request",
                  {{"connection", state.id}, {"operation", operation}, {"type", type}, {"status", status}});
  };
  if (operation != "READ") {
    respond(400, "unsupported $management operation '" + operation + "'", proton::value());
    return;
  }
  if (!iequals(name, options_.hub)) {
    respond(404, "The messaging entity '" + name + "' could not be found.", proton::value());
    return;
  }
  if (request.properties().exists("security_token")) {
    const std::string token = property_text(request, "security_token");
    SasTokenParts parts;
    if (!parse_sas_token(token, parts) ||
        !verify_sas_token(token, parts.resource, options_.key_name, options_.key,
                          std::chrono::system_clock::now()) ||
        !entity_path_covers(normalized_entity_path(parts.resource), normalized_entity_path(options_.hub))) {
      respond(401, "InvalidSignature: the security_token is not valid for this hub.", proton::value());
      return;
    }
  }
  if (type == "com.microsoft:eventhub") {
    std::vector<std::string> ids;
    for (int i = 0; i < options_.partitions; ++i) ids.push_back(std::to_string(i));
    std::map<std::string, proton::value> body;
    body["name"] = options_.hub;
    body["created_at"] = proton::timestamp(created_at_ms_);
    body["partition_count"] = static_cast<std::int32_t>(options_.partitions);
    body["partition_ids"] = ids;
    respond(200, "OK", body);
    return;
  }
  if (type == "com.microsoft:partition") {
    const std::string id = property_text(request, "partition");
    const bool numeric =
        !id.empty() && id.size() < 6 && id.find_first_not_of("0123456789") == std::string::npos;
    if (!numeric || std::stoi(id) >= options_.partitions) {
      respond(404, "Partition '" + id + "' does not exist.", proton::value());
      return;
    }
    std::unique_lock lock(records_mutex_);
    const PartitionStats stats = partitions_[static_cast<std::size_t>(std::stoi(id))];
    lock.unlock();
    std::map<std::string, proton::value> body;
    body["name"] = options_.hub;
    body["partition"] = id;
    body["begin_sequence_number"] = static_cast<std::int64_t>(0);
    body["last_enqueued_sequence_number"] = static_cast<std::int64_t>(stats.last_sequence_number);
    body["last_enqueued_offset"] =
        std::to_string(stats.last_sequence_number < 0 ? -1 : stats.last_sequence_number);
    body["last_enqueued_time_utc"] = proton::timestamp(stats.last_enqueued_ms);
    body["is_partition_empty"] = stats.last_sequence_number < 0;
    respond(200, "OK", body);
    return;
  }
  respond(400, "unsupported $management type '" + type + "'", proton::value());
}

std::string FakeEventHubsBroker::choose_partition(const IncomingLink& link,
                                                  std::optional<std::string_view> key) {
  if (!link.partition.empty()) return link.partition;
  const auto count = static_cast<std::uint64_t>(options_.partitions);
  if (key) return std::to_string(stable_hash(*key) % count);
  return std::to_string(round_robin_.fetch_add(1) % count);
}

namespace {

// One event's record from a decoded message; the partition is chosen by the caller.
EventRecord record_of(const proton::message& message) {
  EventRecord record;
  const auto& annotations = message.message_annotations();
  const proton::annotation_key key_name("x-opt-partition-key");
  if (annotations.exists(key_name)) {
    const proton::value key = annotations.get(key_name);
    if (key.type() != proton::NULL_TYPE) record.partition_key = amqp_text(key);
  }
  record.message_id = id_text(message.id());
  if (!message.content_type().empty()) record.content_type = message.content_type();
  if (!message.properties().empty()) {
    std::map<std::string, proton::scalar> properties;
    proton::get(message.properties().value(), properties);
    for (const auto& [name, value] : properties) {
      record.properties.emplace(name, amqp_text(value));
      if (value.type() == proton::BINARY) record.binary_properties.insert(name);
    }
  }
  const proton::value& body = message.body();
  if (message.inferred() && body.type() == proton::BINARY) {
    record.body_kind = "data";
  } else if (message.inferred() && body.type() == proton::LIST) {
    record.body_kind = "sequence";
  } else {
    record.body_kind = "value";
  }
  record.body = amqp_text(body);
  return record;
}

// The record of a plain event (see read_plain_event): the same fields record_of reads from Proton's
// decoding of it.
EventRecord record_of(const PlainEvent& event) {
  EventRecord record;
  if (event.partition_key) record.partition_key.emplace(*event.partition_key);
  if (event.message_id) record.message_id.emplace(*event.message_id);
  if (event.content_type) record.content_type.emplace(*event.content_type);
  for (const auto& property : event.properties) {
    record.properties.emplace(property.name, property.value);
    if (property.binary) record.binary_properties.emplace(property.name);
  }
  record.body.assign(event.body);
  record.body_kind = "data";
  return record;
}

// AMQP strings must be UTF-8. A peer that decodes them strictly refuses the message, one that does not
// hands consumers (and its partition hashing) altered text: fake-eventhubs refuses, to make it visible.
std::optional<std::string> invalid_utf8_string(const proton::message& message) {
  const proton::annotation_key key_name("x-opt-partition-key");
  const auto& annotations = message.message_annotations();
  if (annotations.exists(key_name)) {
    const proton::value key = annotations.get(key_name);
    if (key.type() == proton::STRING && !is_valid_utf8(proton::get<std::string>(key))) {
      return "the x-opt-partition-key annotation is an AMQP string that is not valid UTF-8";
    }
  }
  if (message.properties().empty()) return std::nullopt;
  std::map<std::string, proton::scalar> properties;
  proton::get(message.properties().value(), properties);
  for (const auto& [name, value] : properties) {
    if (!is_valid_utf8(name) ||
        (value.type() == proton::STRING && !is_valid_utf8(proton::get<std::string>(value)))) {
      return "an application property is an AMQP string that is not valid UTF-8";
    }
  }
  return std::nullopt;
}

std::optional<std::string> invalid_utf8_string(const PlainEvent& event) {
  if (event.partition_key && event.partition_key_is_string && !is_valid_utf8(*event.partition_key)) {
    return "the x-opt-partition-key annotation is an AMQP string that is not valid UTF-8";
  }
  for (const auto& property : event.properties) {
    if (!is_valid_utf8(property.name) || (property.string && !is_valid_utf8(property.value))) {
      return "an application property is an AMQP string that is not valid UTF-8";
    }
  }
  return std::nullopt;
}

// The events of an SDK batch envelope, each read the cheap way when it is a plain event and through
// Proton's decoding otherwise; empty when `message` is a single event. Throws std::invalid_argument
// naming a data section that holds no AMQP message, or an event with a string that is not UTF-8.
std::vector<EventRecord> batch_records(const proton::message& message, std::string_view raw) {
  // Only a message without properties of its own can be a batch envelope: this keeps the extra
  // decoding off the path of ordinary single events.
  const bool maybe_batch = message.properties().empty() && message.id().empty() &&
                           message.content_type().empty() && message.inferred() &&
                           message.body().type() == proton::BINARY;
  std::vector<EventRecord> inner;
  if (!maybe_batch) return inner;
  thread_local PlainEvent plain;
  for (const auto& section : batch_envelope_sections(raw)) {
    const std::size_t number = inner.size() + 1;  // spelled out only in an error
    if (!is_encoded_message(section))
      throw std::invalid_argument("the batch's data section " + std::to_string(number) + " is not an AMQP message");
    std::optional<std::string> problem;
    if (read_plain_event(section, plain)) {
      problem = invalid_utf8_string(plain);
      inner.push_back(record_of(plain));
    } else {
      proton::message event;
      event.decode(std::vector<char>(section.begin(), section.end()));
      problem = invalid_utf8_string(event);
      inner.push_back(record_of(event));
    }
    if (problem) throw std::invalid_argument("event " + std::to_string(number) + " of the batch: " + *problem);
  }
  return inner;
}

// Why the delivery must be refused with amqp:decode-error, if it must; fills `batch` with the events of
// a batch envelope. One bad event fails its whole batch, as with the service (a batch is one delivery
// with one outcome). `plain` is null when the delivery is not a plain event.
std::optional<std::string> decode_problem(const proton::message& message, std::string_view raw,
                                          const PlainEvent* plain, std::vector<EventRecord>& batch) {
  if (plain != nullptr) return invalid_utf8_string(*plain);
  try {
    batch = batch_records(message, raw);
  } catch (const std::exception& e) {
    return e.what();
  }
  return invalid_utf8_string(message);
}

// The events of one delivery: the message itself, or each message of an SDK batch envelope.
std::vector<EventRecord> records_of(const proton::message& message, std::vector<EventRecord> batch) {
  if (batch.empty()) return {record_of(message)};
  const EventRecord envelope = record_of(message);
  for (auto& record : batch) {
    if (!record.partition_key) record.partition_key = envelope.partition_key;
  }
  return batch;
}

// True when an event of the delivery (the message, or one event of its batch) has `text` in its body.
bool holds_body_containing(const proton::message& message, const std::vector<EventRecord>& batch,
                           const PlainEvent* plain, std::string_view text) {
  if (plain != nullptr) return plain->body.find(text) != std::string_view::npos;
  if (batch.empty()) return record_of(message).body.find(text) != std::string::npos;
  return std::any_of(batch.begin(), batch.end(),
                     [text](const EventRecord& record) { return record.body.find(text) != std::string::npos; });
}

}  // namespace

void FakeEventHubsBroker::handle_event(ConnectionState& state, const IncomingLink& link,
                                       proton::delivery& delivery, const proton::message& message) {
  const std::string_view raw = last_received_message_bytes();
  std::size_t size = raw.size();
  if (size == 0) {
    thread_local std::vector<char> encoded;
    message.encode(encoded);
    size = encoded.size();
  }
  const proton::connection connection = delivery.connection();
  if (size > options_.max_message_size) {
    ++received_;
    logger().info("fault_injected", {{"connection", state.id},
                                     {"fault", "message_size_exceeded"},
                                     {"size", size},
                                     {"max_message_size", options_.max_message_size}});
    settle_event(connection, delivery, Verdict::Reject, kSizeExceeded,
                 "The received message (size " + std::to_string(size) + " bytes) exceeds the limit (" +
                     std::to_string(options_.max_message_size) + " bytes).",
                 {});
    return;
  }
  // Most deliveries are read straight from their bytes; only what that cannot describe (batch
  // envelopes, AMQP value bodies, ids that are not strings...) goes through Proton's decoded message.
  thread_local PlainEvent plain;
  const bool is_plain = read_plain_event(raw, plain);
  std::vector<EventRecord> batch;
  const auto problem = decode_problem(message, raw, is_plain ? &plain : nullptr, batch);
  // A batch's events count one by one; one that cannot be read counts once (its events are unknown).
  received_ += problem || batch.empty() ? 1 : batch.size();
  if (problem) {
    logger().info("event_refused", {{"connection", state.id}, {"error", *problem}});
    settle_event(connection, delivery, Verdict::Reject, "amqp:decode-error", *problem, {});
    return;
  }
  if (!options_.reject_body_containing.empty() &&
      holds_body_containing(message, batch, is_plain ? &plain : nullptr, options_.reject_body_containing)) {
    logger().info("fault_injected", {{"connection", state.id},
                                     {"fault", "reject_body"},
                                     {"condition", options_.reject_condition},
                                     {"events", batch.empty() ? 1 : batch.size()}});
    settle_event(connection, delivery, Verdict::Reject, options_.reject_condition,
                 "fake-eventhubs --reject-body-containing", {});
    return;
  }
  const std::uint64_t delivery_number = ++deliveries_;
  if (options_.reject_every > 0 && delivery_number % static_cast<std::uint64_t>(options_.reject_every) == 0) {
    logger().info("fault_injected", {{"connection", state.id},
                                     {"fault", "reject"},
                                     {"condition", options_.reject_condition},
                                     {"delivery", delivery_number}});
    settle_event(connection, delivery, Verdict::Reject, options_.reject_condition,
                 "fake-eventhubs --reject-every " + std::to_string(options_.reject_every), {});
    return;
  }
  if (options_.server_busy_every > 0 &&
      delivery_number % static_cast<std::uint64_t>(options_.server_busy_every) == 0) {
    logger().info("fault_injected",
                  {{"connection", state.id}, {"fault", "server_busy"}, {"delivery", delivery_number}});
    settle_event(connection, delivery, Verdict::Reject, kServerBusy,
                 "The request was terminated because the entity is being throttled (fake-eventhubs "
                 "--server-busy-every " +
                     std::to_string(options_.server_busy_every) + ").",
                 {});
    return;
  }

  settle_event(connection, delivery, Verdict::Accept, {}, {},
               accepted_records(link, delivery, message, std::move(batch), is_plain ? &plain : nullptr));
}

std::vector<EventRecord> FakeEventHubsBroker::accepted_records(const IncomingLink& link,
                                                               const proton::delivery& delivery,
                                                               const proton::message& message,
                                                               std::vector<EventRecord> batch,
                                                               const PlainEvent* plain) {
  // Without a record file only the partition of a plain event is needed (its statistics).
  const bool recording = !options_.record_file.empty();
  std::vector<EventRecord> records;
  if (plain == nullptr) {
    records = records_of(message, std::move(batch));
  } else if (recording) {
    records.push_back(record_of(*plain));
  } else {
    records.emplace_back();
  }
  // A batch is one delivery and lands in one partition, as with the service.
  const std::string partition = choose_partition(
      link, plain != nullptr ? plain->partition_key : std::optional<std::string_view>(records.front().partition_key));
  const std::string link_name = recording ? delivery.receiver().name() : std::string();
  for (auto& record : records) {
    record.partition = partition;
    record.link = link_name;
  }
  return records;
}

void FakeEventHubsBroker::settle_event(const proton::connection& connection, proton::delivery delivery,
                                       Verdict verdict, const std::string& condition,
                                       const std::string& description, std::vector<EventRecord> records) {
  auto apply = [this, connection, delivery, verdict, condition, description,
                records = std::move(records)]() mutable {
    ConnectionState* found = state_of(connection);
    if (found == nullptr || found->dropping) return;
    proton::receiver receiver = delivery.receiver();
    if (receiver.active()) receiver.add_credit(1);  // the answer frees the credit (see on_receiver_open)
    if (verdict == Verdict::Reject) {
      reject_with_condition(delivery, condition, description);
      return;
    }
    bool drop = false;
    bool detach = false;
    std::uint64_t accepted = 0;
    {
      std::lock_guard lock(records_mutex_);
      if (!records.empty()) ++partitions_[static_cast<std::size_t>(std::stoi(records.front().partition))].deliveries;
      for (const auto& record : records) {
        PartitionStats& stats = partitions_[static_cast<std::size_t>(std::stoi(record.partition))];
        ++stats.last_sequence_number;
        ++stats.events;
        stats.last_enqueued_ms = unix_millis_now();
        recorder_.record(record);
        accepted = ++accepted_;
        drop = drop ||
               (options_.drop_after > 0 && accepted % static_cast<std::uint64_t>(options_.drop_after) == 0);
        detach = detach || (options_.detach_link_after > 0 &&
                            accepted % static_cast<std::uint64_t>(options_.detach_link_after) == 0);
      }
    }
    delivery.accept();
    if (detach) detach_link(*found, receiver);
    if (drop) {
      logger().info("fault_injected",
                    {{"connection", found->id}, {"fault", "drop_connection"}, {"accepted", accepted}});
      schedule_drop(connection, "--drop-after");
    }
  };
  if (options_.delay_ms <= 0) {
    apply();
    return;
  }
  ConnectionState* found = state_of(connection);
  if (found == nullptr) return;
  ConnectionState& state = *found;
  state.delayed.emplace_back(std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.delay_ms),
                             std::move(apply));
  if (!state.delay_timer_armed) arm_delay_timer(connection, state);
}

// One timer per connection for all its delayed dispositions (a timer per event costs more than the
// rest of the fake at 100 000 events/s): it fires when the oldest is due and runs every due one.
void FakeEventHubsBroker::arm_delay_timer(const proton::connection& connection, ConnectionState& state) {
  state.delay_timer_armed = true;
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(state.delayed.front().first -
                                                                          std::chrono::steady_clock::now());
  // A container timer, then the connection's own work queue: the disposition must be made in the
  // connection's context so that Proton notices the output. Each step re-checks that the connection
  // still exists (work_queue::schedule would keep a raw pointer to a possibly freed queue).
  container_->schedule(proton::duration(std::max<long long>(0, wait.count())), [this, connection] {
    if (state_of(connection) == nullptr) return;
    in_context(connection, [this, connection](ConnectionState& state) { run_due_dispositions(connection, state); });
  });
}

void FakeEventHubsBroker::run_due_dispositions(const proton::connection& connection, ConnectionState& state) {
  state.delay_timer_armed = false;
  const auto now = std::chrono::steady_clock::now();
  while (!state.delayed.empty() && state.delayed.front().first <= now) {
    auto apply = std::move(state.delayed.front().second);
    state.delayed.pop_front();
    apply();  // never erases the connection: only on_transport_close does
  }
  if (!state.delayed.empty()) arm_delay_timer(connection, state);
}

void FakeEventHubsBroker::detach_link(ConnectionState& state, proton::receiver receiver) {
  logger().info("fault_injected",
                {{"connection", state.id}, {"fault", "detach_link"}, {"link", receiver.name()}, {"accepted", accepted_.load()}});
  state.incoming.erase(receiver);
  receiver.close(proton::error_condition("amqp:link:detach-forced", "fake-eventhubs --detach-link-after"));
}

void FakeEventHubsBroker::schedule_drop(const proton::connection& connection, const char* reason) {
  ConnectionState* found = state_of(connection);
  if (found == nullptr || found->dropping) return;
  found->dropping = true;
  logger().info("connection_dropping", {{"connection", found->id}, {"reason", reason}});
  // A short grace lets the dispositions already made (the Nth acceptance included) reach the socket;
  // then the drop runs on the connection's work queue, in the connection's context, where Proton
  // notices the closed transport and closes the socket.
  container_->schedule(kDropGrace, [this, connection] {
    if (state_of(connection) == nullptr) return;
    in_context(connection, [connection](ConnectionState&) { drop_transport(connection); });
  });
}

}  // namespace connector
