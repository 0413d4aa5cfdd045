#include "support/redis_server.hpp"

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>

#include "common/errors.hpp"

namespace connector::testing {
namespace {

using namespace std::chrono_literals;

std::string redis_server_binary() {
  // Overridable to test against another Redis version without rebuilding.
  if (const char* path = std::getenv("REDIS_SERVER_BINARY"); path != nullptr && *path != '\0') return path;
  return "/usr/bin/redis-server";
}

/// A cluster node also listens on its bus port, its client port + 10000, which must exist and be free.
std::uint16_t free_cluster_port() {
  constexpr std::uint16_t kBusOffset = 10000;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::uint16_t port = free_port();
    if (port < 65536 - kBusOffset && port_free(static_cast<std::uint16_t>(port + kBusOffset))) return port;
  }
  throw std::runtime_error("no free port below 55536 with a free cluster bus port");
}

}  // namespace

RedisServer::RedisServer(RedisServerOptions options) : options_(std::move(options)) {
  if (options_.tls) certificates_ = make_test_certificates(dir_.path() / "pki");
  // free_port() can race with another test taking the same port before redis binds it: try again
  // with a new port when the server could not listen.
  std::string last_error;
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = options_.cluster ? free_cluster_port() : free_port();
    try {
      launch();
      return;
    } catch (const std::runtime_error& error) {
      last_error = error.what();
      if (last_error.find("Address already in use") == std::string::npos) throw;
    }
  }
  throw std::runtime_error(last_error);
}

RedisServer::~RedisServer() {
  if (process_) process_->kill();
}

std::uint16_t RedisServer::port() const { return port_; }

std::string RedisServer::url() const {
  return (options_.tls ? "rediss://localhost:" : "redis://127.0.0.1:") + std::to_string(port_);
}

std::string RedisServer::unix_socket_path() const {
  return options_.unix_socket ? (dir_.path() / "redis.sock").string() : std::string();
}

const TlsCertificates& RedisServer::certificates() const {
  if (!certificates_)
    throw std::logic_error("RedisServer::certificates(): the server was started without TLS");
  return *certificates_;
}

RedisConnectionOptions RedisServer::connection_options() const {
  RedisConnectionOptions options;
  options.endpoint.scheme = options_.tls ? RedisEndpoint::Scheme::Tls : RedisEndpoint::Scheme::Tcp;
  options.endpoint.host = options_.tls ? "localhost" : "127.0.0.1";
  options.endpoint.port = port_;
  if (!options_.acl_user.empty()) {
    options.endpoint.username = options_.acl_user;
    options.endpoint.password = options_.acl_password;
  } else if (!options_.requirepass.empty()) {
    options.endpoint.password = options_.requirepass;
  }
  if (options_.tls) {
    options.tls.ca_file = certificates_->ca_cert.string();
    if (options_.tls_client_auth) {
      options.tls.cert_file = certificates_->client_cert.string();
      options.tls.key_file = certificates_->client_key.string();
    }
  }
  options.connect_timeout = 5s;
  options.command_timeout = 10s;
  return options;
}

RedisConnectionOptions RedisServer::unix_connection_options() const {
  if (!options_.unix_socket) throw std::logic_error("RedisServer: started without unix_socket");
  RedisConnectionOptions options = connection_options();
  options.endpoint.scheme = RedisEndpoint::Scheme::Unix;
  options.endpoint.unix_path = unix_socket_path();
  options.tls = {};
  return options;
}

std::vector<std::string> RedisServer::arguments() const {
  const std::string port = std::to_string(port_);
  std::vector<std::string> args = {
      redis_server_binary(), "--bind",      "127.0.0.1", "--save",    "", "--dir",
      dir_.path().string(),  "--daemonize", "no",        "--logfile", ""};
  if (options_.tls) {
    const auto& pki = *certificates_;
    args.insert(args.end(),
                {"--port", "0", "--tls-port", port, "--tls-cert-file", pki.server_cert.string(),
                 "--tls-key-file", pki.server_key.string(), "--tls-ca-cert-file", pki.ca_cert.string(),
                 "--tls-auth-clients", options_.tls_client_auth ? "yes" : "no"});
  } else {
    args.insert(args.end(), {"--port", port});
  }
  if (options_.aof_always) {
    args.insert(args.end(), {"--appendonly", "yes", "--appendfsync", "always"});
  } else {
    args.insert(args.end(), {"--appendonly", "no"});
  }
  if (options_.unix_socket) {
    args.insert(args.end(), {"--unixsocket", unix_socket_path(), "--unixsocketperm", "700"});
  }
  if (options_.cluster) {
    args.insert(args.end(), {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"});
  }
  if (!options_.acl_user.empty()) {
    // Each word after --user becomes one argument of the "user" directive (redis 7 ACL rules).
    args.insert(args.end(),
                {"--user", options_.acl_user, "on", ">" + options_.acl_password, "~*", "&*", "+@all"});
  }
  if (!options_.requirepass.empty()) args.insert(args.end(), {"--requirepass", options_.requirepass});
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  return args;
}

void RedisServer::launch() {
  process_ = std::make_unique<ChildProcess>(arguments(), dir_.path() / "redis.log");
  auto options = connection_options();
  options.connect_timeout = 1s;
  options.command_timeout = 1s;
  std::string last_error;
  const bool ready = wait_until(
      [&] {
        if (!process_->running()) return true;  // reported below with the log
        try {
          RedisConnection connection(options);
          connection.connect();  // includes AUTH and PING
          return true;
        } catch (const RedisConnectionError& error) {
          last_error = error.what();
          return false;
        }
      },
      10s);
  if (!process_->running()) {
    const std::string text = log();
    process_.reset();
    throw std::runtime_error("redis-server on port " + std::to_string(port_) +
                             " exited at startup. Its log:\n" + text);
  }
  if (!ready) {
    const std::string text = log();
    process_.reset();
    throw std::runtime_error("redis-server on port " + std::to_string(port_) +
                             " did not answer PING within 10 s (last error: " + last_error + "). Its log:\n" +
                             text);
  }
}

void RedisServer::stop() {
  if (!process_ || !process_->running()) return;
  process_->signal(SIGTERM);
  if (process_->wait(10s) < 0) process_->kill();
}

void RedisServer::kill() {
  if (process_) process_->kill();
}

void RedisServer::start() {
  if (process_ && process_->running()) return;
  launch();
}

void RedisServer::restart() {
  stop();
  start();
}

bool RedisServer::running() { return process_ && process_->running(); }

std::string RedisServer::log() const { return process_ ? process_->log() : std::string(); }

RedisReply RedisServer::command(const std::vector<std::string_view>& argv) {
  RedisConnection connection(connection_options());
  connection.connect();
  return connection.command(argv);
}

}  // namespace connector::testing
