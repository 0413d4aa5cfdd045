#pragma once
// Claims-based security on one AMQP connection: put-token requests over one `$cbs` sender and one named
// `$cbs` receiver, reused for every token, each request answered (or timed out) by its correlation-id.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <proton/connection.hpp>
#include <proton/message.hpp>
#include <proton/receiver.hpp>
#include <proton/sender.hpp>
#include <string>

namespace connector {

/// put-token `type` of a Shared Access Signature, and of a Microsoft Entra ID access token.
inline const std::string kSasTokenType = "servicebus.windows.net:sastoken";
inline const std::string kJwtTokenType = "jwt";

/// The answer to one put-token: ok for status 200/202; otherwise the status and its description
/// (status 0 when there was no reply: timeout or connection loss).
struct CbsReply {
  bool ok = false;
  int status = 0;
  std::string description;
};

/// Owns the `$cbs` sender and receiver of one connection and matches replies to requests by
/// correlation-id. Container thread only; reset() when the connection goes away.
class CbsClient {
 public:
  using ReplyHandler = std::function<void(const CbsReply&)>;

  /// Opens both links on `connection`; replies are addressed to `reply_address` (a named target: a
  /// dynamic one gets no address, and a request without a valid reply-to is never answered).
  void open(proton::connection& connection, const std::string& reply_address);

  /// Queues a put-token of `type` (kSasTokenType or kJwtTokenType); `done` runs once, on reply, on
  /// expire(), or never after reset().
  void put_token(const std::string& audience, const std::string& token,
                 std::chrono::system_clock::time_point expiry, ReplyHandler done,
                 const std::string& type = kSasTokenType);

  bool owns(const proton::link& link) const;
  /// Sends queued requests while the `$cbs` sender has credit.
  void on_sendable();
  /// A message on the `$cbs` receiver.
  void on_message(const proton::message& reply);
  /// Fails (status 0) every request sent or queued before `now - timeout`.
  void expire(std::chrono::steady_clock::time_point now, std::chrono::milliseconds timeout);
  /// Forgets links and requests without calling their handlers (the connection is gone).
  void reset();

  /// Builds the request message (exposed for the unit tests).
  static proton::message make_request(const std::string& message_id, const std::string& reply_to,
                                      const std::string& audience, const std::string& token,
                                      std::chrono::system_clock::time_point expiry,
                                      const std::string& type = kSasTokenType);
  /// Reads a reply: status-code (any AMQP integer type) and status-description.
  static CbsReply parse_reply(const proton::message& reply);

 private:
  struct Request {
    proton::message message;
    ReplyHandler done;
    std::chrono::steady_clock::time_point created;
  };

  proton::sender sender_;
  proton::receiver receiver_;
  std::string reply_address_;
  std::uint64_t next_id_ = 0;
  std::deque<std::pair<std::string, Request>> queued_;  // waiting for credit on the $cbs sender
  std::map<std::string, Request> awaiting_;             // sent, by message-id
};

}  // namespace connector
