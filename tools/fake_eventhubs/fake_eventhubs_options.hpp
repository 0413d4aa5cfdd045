#pragma once
// Everything fake-eventhubs is told on its command line.
#include <cstddef>
#include <string>

namespace connector {

/// Settings of one fake-eventhubs process; defaults match the CLI's.
struct FakeEventHubsOptions {
  // "localhost" listens on every address the name resolves to, on one port: on Debian's usual
  // /etc/hosts that is 127.0.0.1 and ::1, so a client that resolves localhost to either finds the server
  // (Node.js takes ::1 first; a listener on 127.0.0.1 alone refuses it).
  std::string host = "localhost";
  int port = 0;
  std::string tls_cert_file;  // TLS is on when both files are given
  std::string tls_key_file;
  int websocket_port = -1;  // >= 0: also AMQP over WebSockets there (0: any free port); TLS as above
  std::string hub;
  int partitions = 4;
  std::string key_name = "RootManageSharedAccessKey";
  std::string key;  // empty: any well-formed, unexpired token is accepted
  std::size_t max_message_size = 1048576;
  std::string record_file;
  int reject_every = 0;
  std::string reject_condition = "amqp:decode-error";
  std::string reject_body_containing;  // non-empty: refuse every delivery holding such an event
  int server_busy_every = 0;
  int drop_after = 0;
  int drop_first_connections = 0;  // the first N connections lose their socket as soon as they open
  int detach_link_after = 0;
  int delay_ms = 0;
  int credit = 1000;
  int threads = 1;  // Proton container threads; one connection is served by one thread at a time
  bool token_lifetime_check = true;
  std::string jwt_key;  // HS256 key of the Entra ID stand-in; empty: put-token of type "jwt" is refused

  bool tls() const { return !tls_cert_file.empty() && !tls_key_file.empty(); }
};

}  // namespace connector
