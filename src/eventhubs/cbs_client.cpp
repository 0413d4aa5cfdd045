#include "eventhubs/cbs_client.hpp"

#include <fmt/format.h>

#include <proton/message_id.hpp>
#include <proton/receiver_options.hpp>
#include <proton/scalar.hpp>
#include <proton/sender_options.hpp>
#include <proton/target_options.hpp>
#include <proton/timestamp.hpp>

namespace connector {

namespace {
constexpr const char* kCbsNode = "$cbs";

std::string id_text(const proton::message_id& id) {
  if (id.type() == proton::STRING) return proton::get<std::string>(id);
  return proton::to_string(id);
}
}  // namespace

void CbsClient::open(proton::connection& connection, const std::string& reply_address) {
  reset();
  reply_address_ = reply_address;
  sender_ = connection.open_sender(kCbsNode);
  proton::target_options target;
  target.address(reply_address_);
  receiver_ = connection.open_receiver(kCbsNode, proton::receiver_options().target(target));
}

proton::message CbsClient::make_request(const std::string& message_id, const std::string& reply_to,
                                        const std::string& audience, const std::string& token,
                                        std::chrono::system_clock::time_point expiry,
                                        const std::string& type) {
  proton::message request;
  request.id(proton::message_id(message_id));
  request.reply_to(reply_to);
  request.body(token);  // an AmqpValue string, as the service expects for both token types
  auto& properties = request.properties();
  properties.put("operation", proton::scalar(std::string("put-token")));
  properties.put("type", proton::scalar(type));
  properties.put("name", proton::scalar(audience));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(expiry.time_since_epoch()).count();
  properties.put("expiration", proton::scalar(proton::timestamp(ms)));
  return request;
}

CbsReply CbsClient::parse_reply(const proton::message& reply) {
  CbsReply out;
  const auto& properties = reply.properties();
  if (properties.exists("status-code")) {
    try {
      out.status = static_cast<int>(proton::coerce<std::int64_t>(properties.get("status-code")));
    } catch (const proton::conversion_error&) {
      out.status = 0;
    }
  }
  if (properties.exists("status-description")) {
    const proton::scalar description = properties.get("status-description");
    out.description = description.type() == proton::STRING ? proton::get<std::string>(description)
                                                           : proton::to_string(description);
  }
  if (out.status == 0 && out.description.empty()) out.description = "reply without status-code";
  out.ok = out.status == 200 || out.status == 202;
  return out;
}

void CbsClient::put_token(const std::string& audience, const std::string& token,
                          std::chrono::system_clock::time_point expiry, ReplyHandler done,
                          const std::string& type) {
  std::string id = fmt::format("cbs-{}-{}", reply_address_, next_id_++);
  Request request{make_request(id, reply_address_, audience, token, expiry, type), std::move(done),
                  std::chrono::steady_clock::now()};
  queued_.emplace_back(std::move(id), std::move(request));
  on_sendable();
}

bool CbsClient::owns(const proton::link& link) const {
  return (sender_ && link == sender_) || (receiver_ && link == receiver_);
}

void CbsClient::on_sendable() {
  while (!queued_.empty() && sender_ && sender_.active() && sender_.credit() > 0) {
    auto [id, request] = std::move(queued_.front());
    queued_.pop_front();
    sender_.send(request.message);
    request.message = proton::message();  // the token is in the delivery now; keep no extra copy
    awaiting_.emplace(std::move(id), std::move(request));
  }
}

void CbsClient::on_message(const proton::message& reply) {
  const auto it = awaiting_.find(id_text(reply.correlation_id()));
  if (it == awaiting_.end()) return;  // a late reply to a request that already timed out
  ReplyHandler done = std::move(it->second.done);
  awaiting_.erase(it);
  done(parse_reply(reply));
}

void CbsClient::expire(std::chrono::steady_clock::time_point now, std::chrono::milliseconds timeout) {
  std::vector<ReplyHandler> expired;
  for (auto it = awaiting_.begin(); it != awaiting_.end();) {
    if (now - it->second.created >= timeout) {
      expired.push_back(std::move(it->second.done));
      it = awaiting_.erase(it);
    } else {
      ++it;
    }
  }
  while (!queued_.empty() && now - queued_.front().second.created >= timeout) {
    expired.push_back(std::move(queued_.front().second.done));
    queued_.pop_front();
  }
  const CbsReply timed_out{false, 0, fmt::format("no put-token reply within {} ms", timeout.count())};
  for (auto& done : expired) done(timed_out);
}

void CbsClient::reset() {
  sender_ = proton::sender();
  receiver_ = proton::receiver();
  queued_.clear();
  awaiting_.clear();
}

}  // namespace connector
