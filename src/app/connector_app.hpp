#pragma once
// Wiring of the parts from a Config, signal handling and exit statuses; main() only calls this.
#include <memory>

#include "app/component_options.hpp"
#include "common/errors.hpp"
#include "config/config.hpp"
#include "identity/token_refresher.hpp"
#include "sinks/sink.hpp"

namespace connector {

/// Exit statuses, as the README lists them under "Signals" (systemd and Kubernetes act on them).
enum ExitStatus : int {
  kExitOk = 0,
  kExitFatal = 1,
  kExitInvalidConfiguration = 2,
  kExitCannotConnect = 3,
};

/// The exit status for an error that ends the connector: 2 for the configuration, 3 for what could not
/// be reached, authenticated or bound at startup, else 1.
int exit_status_of(const ConnectorError& error);
/// The exit status for a Redis failure: the one place that maps a RedisErrorKind to it.
int exit_status_of(RedisErrorKind kind);

/// True when every stream shares one output: Event Hubs (one connection), the blackhole, and LOCAL_FILE
/// with one stream. LOCAL_FILE with several gives each stream an output of its own, in its own directory.
bool output_is_shared(const Config& config);

/// The output named by OUTPUT_ADAPTER_TYPE, for `stream` (LOCAL_FILE writes the stream's name and, with
/// several streams, into its directory), not started yet.
/// `eventhubs_tokens`: the Entra ID tokens of EVENT_HUB_FULLY_QUALIFIED_NAMESPACE, else null.
std::unique_ptr<Sink> make_sink(const Config& config, const StreamSpec& stream,
                                std::shared_ptr<const AccessTokenProvider> eventhubs_tokens = nullptr);

/// Runs the connector until SIGINT or SIGTERM (a second one exits at once) and returns the exit
/// status. SIGINT and SIGTERM must be blocked in every thread before it is called (block_signals()).
int run_connector(const Config& config);

/// Blocks SIGINT and SIGTERM for this thread and those it starts (they are taken with sigtimedwait),
/// and ignores SIGPIPE (a write to a closed socket must not kill the process).
void block_signals();

}  // namespace connector
