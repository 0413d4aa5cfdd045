// fake-eventhubs: an AMQP 1.0 server that stands in for Azure Event Hubs in tests, benchmarks and local
// development. See README.md in this directory.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "fake_eventhubs_broker.hpp"
#include "fake_eventhubs_options.hpp"
#include "observability/logger.hpp"

namespace {

// Set by the signal handlers, read by the container thread's timer.
connector::BrokerSignals g_signals;

extern "C" void on_signal(int signo) {
  switch (signo) {
    case SIGTERM:
    case SIGINT:
      g_signals.stop.store(true);
      break;
    case SIGUSR1:
      g_signals.drop_all.store(true);
      break;
    case SIGUSR2:
      g_signals.flush.store(true);
      break;
    default:
      break;
  }
}

void install_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (const int signo : {SIGTERM, SIGINT, SIGUSR1, SIGUSR2}) sigaction(signo, &action, nullptr);
  // A write to a client that vanished must fail with EPIPE, not kill the server.
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace

int main(int argc, char** argv) {
  static_assert(std::atomic<bool>::is_always_lock_free, "signal handlers need lock-free atomics");
  connector::FakeEventHubsOptions options;
  CLI::App app{"fake-eventhubs: an AMQP 1.0 stand-in for Azure Event Hubs (CBS, sender links, $management)"};
  app.add_option("--port", options.port, "TCP port to listen on (0: any free port)")
      ->required()
      ->check(CLI::Range(0, 65535));
  app.add_option("--host", options.host, "address to listen on (a name: every address it resolves to)")->capture_default_str();
  app.add_option("--tls-cert", options.tls_cert_file, "PEM certificate: serve AMQPS")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", options.tls_key_file, "PEM private key of --tls-cert")
      ->check(CLI::ExistingFile);
  app.add_option(
         "--websocket-port", options.websocket_port,
         "also serve AMQP over WebSockets (path /$servicebus/websocket, subprotocol AMQPWSB10) on this "
         "port, wss:// with --tls-cert (0: any free port)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--hub", options.hub, "the event hub's name")->required();
  app.add_option("--partitions", options.partitions, "number of partitions")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--key-name", options.key_name, "SAS key name CBS tokens must be signed under")
      ->capture_default_str();
  app.add_option("--key", options.key, "SAS key CBS tokens must be signed with");
  app.add_option("--max-message-size", options.max_message_size,
                 "max-message-size advertised on sender links; larger deliveries are rejected")
      ->check(CLI::Range(std::size_t{256}, std::size_t{1} << 30))
      ->capture_default_str();
  app.add_option("--record", options.record_file, "append one JSON line per accepted event to this file");
  app.add_option("--reject-every", options.reject_every, "reject every Nth delivery with --reject-condition")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--reject-condition", options.reject_condition, "error condition of --reject-every")
      ->capture_default_str();
  app.add_option("--reject-body-containing", options.reject_body_containing,
                 "reject, with --reject-condition, every delivery holding an event whose body contains this "
                 "text (a whole batch, as the service does)");
  app.add_option("--server-busy-every", options.server_busy_every,
                 "reject every Nth delivery with com.microsoft:server-busy")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--drop-after", options.drop_after,
                 "close the client's socket after every N accepted events")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--drop-first-connections", options.drop_first_connections,
                 "close the socket of each of the first N connections right after its AMQP open (a "
                 "service that drops clients while they set up)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--detach-link-after", options.detach_link_after,
                 "detach the sender link of every Nth accepted event (amqp:link:detach-forced); the "
                 "connection stays")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--delay-ms", options.delay_ms, "delay every event disposition by this many ms")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--credit", options.credit, "link credit granted to sender links")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--threads", options.threads,
                 "Proton container threads: connections are served in parallel, each by one thread at a time")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--jwt-key", options.jwt_key,
                 "HS256 key that signs Microsoft Entra ID tokens (put-token type jwt, audience "
                 "https://eventhubs.azure.net); unset: only SAS tokens are accepted");
  app.add_flag("--token-lifetime-check,!--no-token-lifetime-check", options.token_lifetime_check,
               "detach event links whose token expired (default: on)");
  CLI11_PARSE(app, argc, argv);
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    std::fprintf(stderr, "fake-eventhubs: --tls-cert and --tls-key must be given together\n");
    return 2;
  }

  install_signal_handlers();
  try {
    connector::FakeEventHubsBroker broker(options, g_signals);
    return broker.run();
  } catch (const std::exception& error) {
    connector::logger().fatal("fake_eventhubs_failed", {{"error", error.what()}});
    return 1;
  }
}
