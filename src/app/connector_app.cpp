#include "app/connector_app.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "app/observability.hpp"
#include "app/stream_worker.hpp"
#include "common/errors.hpp"
#include "eventhubs/eventhubs_sink.hpp"
#include "identity/entra_tokens.hpp"
#include "observability/build_info.hpp"
#include "observability/logger.hpp"
#include "redis/client_list.hpp"
#include "redis/stream_consumer.hpp"
#include "sinks/blackhole_sink.hpp"
#include "sinks/local_file_sink.hpp"
#include "sinks/shared_sink.hpp"

namespace connector {

bool output_is_shared(const Config& config) {
  return config.output != OutputType::LocalFile || config.streams.size() == 1;
}

std::unique_ptr<Sink> make_sink(const Config& config, const StreamSpec& stream,
                                std::shared_ptr<const AccessTokenProvider> eventhubs_tokens) {
  switch (config.output) {
    case OutputType::LocalFile:
      return std::make_unique<LocalFileSink>(local_file_options_from_config(config, stream));
    case OutputType::Blackhole:
      return std::make_unique<BlackholeSink>();
    case OutputType::EventHubs: {
      EventHubsSinkOptions options = eventhubs_options_from_config(config);
      options.entra_tokens = std::move(eventhubs_tokens);
      return std::make_unique<EventHubsSink>(std::move(options));
    }
  }
  throw ConfigurationError({"OUTPUT_ADAPTER_TYPE: unknown output"});
}

int exit_status_of(RedisErrorKind kind) {
  // Every kind but Reply means Redis could not be reached or would not let us in; a Reply means it
  // works but answers what the connector cannot use.
  return kind == RedisErrorKind::Reply ? kExitFatal : kExitCannotConnect;
}

int exit_status_of(const ConnectorError& error) {
  if (dynamic_cast<const ConfigurationError*>(&error) != nullptr) return kExitInvalidConfiguration;
  if (const auto* redis = dynamic_cast<const RedisError*>(&error)) return exit_status_of(redis->kind());
  // A taken HTTP port is the environment's fault, not the settings' syntax, and a restart may succeed
  // (the previous instance releasing it), which RestartPreventExitStatus=2 would forbid.
  if (dynamic_cast<const EventHubsError*>(&error) != nullptr ||
      dynamic_cast<const IdentityError*>(&error) != nullptr ||
      dynamic_cast<const ListenError*>(&error) != nullptr) {
    return kExitCannotConnect;
  }
  return kExitFatal;
}

void block_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

namespace {
const char* signal_name(int signo) {
  return signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "signal";
}

/// Logs why the connector stops (`event` names the phase) and returns its exit status.
int report_failure(const char* event, const ConnectorError& error) {
  const int status = exit_status_of(error);
  logger().fatal(event, {{"error", error.what()}, {"exit_status", status}});
  return status;
}

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

constexpr timespec kSignalTick{0, 100'000'000};

/// Takes SIGINT/SIGTERM while the connector starts (connect retries, TLS handshakes, the Event Hubs
/// attach can each wait many seconds) and ends the process at once. That loses nothing: whatever was
/// read but not confirmed is still pending in Redis, exactly as after a crash. Once disarmed (the
/// pipeline runs), a signal it has just taken is raised again, so supervise() gets it and stops
/// gracefully: no signal falls between the two.
class StartupSignalWatcher {
 public:
  StartupSignalWatcher() : thread_([this] { watch(); }) {}
  StartupSignalWatcher(const StartupSignalWatcher&) = delete;
  StartupSignalWatcher& operator=(const StartupSignalWatcher&) = delete;
  ~StartupSignalWatcher() { disarm(); }

  void disarm() {
    {
      std::lock_guard lock(mutex_);
      disarmed_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void watch() {
    const sigset_t set = stop_signals();
    for (;;) {
      const int signo = ::sigtimedwait(&set, nullptr, &kSignalTick);
      std::lock_guard lock(mutex_);
      if (disarmed_) {
        if (signo > 0) ::kill(::getpid(), signo);  // blocked in every thread: pending for supervise()
        return;
      }
      if (signo <= 0) continue;
      logger().info("shutdown_requested", {{"signal", signal_name(signo)}, {"phase", "startup"}});
      logger().info("connector_stopped", {{"exit_status", static_cast<int>(kExitOk)}});
      std::fflush(stdout);
      ::_exit(kExitOk);
    }
  }

  std::mutex mutex_;
  bool disarmed_ = false;  // guarded by mutex_
  std::thread thread_;
};

// A consumer killed a moment ago may still be listed until Redis reads its socket's close.
constexpr int kConsumerNameChecks = 5;
constexpr auto kConsumerNameRecheckInterval = std::chrono::milliseconds(500);

/// Refuses to start (ConfigurationError, exit 2) when another live client of Redis already uses this
/// CONSUMER_NAME: two processes with one consumer name share one pending list, so each re-reads and
/// re-sends what the other has in flight. The connector names its connections after the consumer
/// (CLIENT SETNAME), which is what CLIENT LIST shows.
void ensure_consumer_name_is_free(const Config& config, RedisConnectionOptions options) {
  options.client_name.clear();  // this check's own connection must not look like the clash it looks for
  RedisConnection connection(options);
  try {
    connection.connect();
    for (int check = 1;; ++check) {
      const auto clashes = clients_named(connection, config.consumer_name);
      if (clashes.empty()) return;
      if (check == kConsumerNameChecks) {
        const auto& other = clashes.front();
        throw ConfigurationError({fmt::format(
            "CONSUMER_NAME: \"{}\" is already used by another live client of Redis at {} (client id {}, "
            "address {}, connected {} s ago); two instances with one consumer name deliver each other's "
            "entries again. Give every instance its own name (the default connector-instance-{{PID}}, or "
            "{{HOSTNAME}} on Kubernetes), or stop the other process",
            config.consumer_name, connection.endpoint().describe(), other.id, other.address,
            other.age_seconds)});
      }
      std::this_thread::sleep_for(kConsumerNameRecheckInterval);
    }
  } catch (const RedisConnectionError& error) {
    // Pipeline::start() connects with retries and reports an unreachable Redis properly.
    logger().debug("consumer_name_check_skipped", {{"reason", error.what()}});
  } catch (const RedisStreamError& error) {
    logger().warn("consumer_name_check_skipped",
                  {{"reason", error.what()}, {"note", "make sure no two instances share CONSUMER_NAME"}});
  }
}

using Workers = std::vector<std::unique_ptr<StreamWorker>>;

/// What run_connector() builds, in construction order; stop_parts() ends what exists, in reverse.
struct ConnectorParts {
  EntraTokens entra;
  std::unique_ptr<Sink> shared_output;  // null when each stream has an output of its own
  std::unique_ptr<SharedSink> output_leases;
  Workers workers;  // one per stream, in STREAM_KEY's order
  std::unique_ptr<Observability> observability;
};

/// Stops every pipeline at once, so that they share SHUTDOWN_GRACE_PERIOD_MS instead of taking it in
/// turn; the shared output stops when the last of them has drained.
void stop_pipelines(ConnectorParts& parts) {
  std::vector<std::thread> stoppers;
  for (auto& worker : parts.workers) stoppers.emplace_back([&worker] { worker->pipeline().stop(); });
  for (auto& stopper : stoppers) stopper.join();
  // A pipeline that never started never stops its lease; the shared output must stop all the same.
  if (parts.output_leases) {
    for (auto& worker : parts.workers) worker->sink().stop(std::chrono::milliseconds(0));
  }
}

/// The first fatal error of any pipeline: every stream stops with it.
std::optional<PipelineFailure> first_fatal_error(const Workers& workers) {
  for (const auto& worker : workers) {
    if (auto fatal = worker->pipeline().fatal_error()) return fatal;
  }
  return std::nullopt;
}

/// Waits for SIGINT/SIGTERM or a fatal pipeline error; stops the pipelines on a thread of its own so
/// that a second signal can still end the process at once.
int supervise(ConnectorParts& parts) {
  const sigset_t set = stop_signals();
  std::thread stopper;
  std::atomic<bool> stopped{false};
  const auto stop_in_background = [&] {
    stopper = std::thread([&] {
      stop_pipelines(parts);
      stopped = true;
    });
  };
  int status = kExitOk;
  for (;;) {
    const int signo = ::sigtimedwait(&set, nullptr, &kSignalTick);
    if (signo > 0) {
      if (stopper.joinable()) {
        logger().warn("forced_exit", {{"signal", signal_name(signo)},
                                      {"note", "unacked entries stay pending in Redis and are redelivered"}});
        std::fflush(stdout);
        ::_exit(kExitFatal);
      }
      logger().info("shutdown_requested", {{"signal", signal_name(signo)}});
      stop_in_background();
    }
    if (!stopper.joinable()) {
      if (auto fatal = first_fatal_error(parts.workers)) {
        status = fatal->invalid_configuration ? kExitInvalidConfiguration : kExitFatal;
        stop_in_background();
      }
    }
    if (stopped) break;
  }
  stopper.join();
  return status;
}

void warn_if_tls_unverified(const Config& config) {
  if (config.redis.scheme == RedisEndpoint::Scheme::Tls && config.redis_tls.insecure) {
    logger().warn("redis_tls_insecure",
                  {{"address", config.redis.describe()},
                   {"note", "REDIS_TLS_INSECURE=true: the server's certificate is not verified"}});
  }
}

/// A worker per stream, each with a lease of the shared output or an output of its own.
void build_workers(const Config& config, ConnectorParts& parts) {
  if (output_is_shared(config)) {
    parts.shared_output = make_sink(config, config.streams.front(), parts.entra.eventhubs);
    parts.output_leases = std::make_unique<SharedSink>(*parts.shared_output, config.streams.size());
  }
  for (const StreamSpec& stream : config.streams) {
    auto sink = parts.output_leases ? parts.output_leases->lease() : make_sink(config, stream, parts.entra.eventhubs);
    parts.workers.push_back(std::make_unique<StreamWorker>(
        config, stream, redis_options_from_config(config, stream, parts.entra.redis), std::move(sink)));
  }
}

std::unique_ptr<Observability> make_observability(const Config& config, ConnectorParts& parts) {
  std::vector<ObservedPipeline> observed;
  for (const auto& worker : parts.workers) observed.push_back({&worker->pipeline(), &worker->metrics()});
  auto output_ready = [&workers = parts.workers] {
    return std::all_of(workers.begin(), workers.end(), [](const auto& worker) { return worker->sink().ready(); });
  };
  return std::make_unique<Observability>(observability_options_from_config(config, parts.entra.redis),
                                         std::move(observed), std::move(output_ready));
}

/// Builds and starts every part; throws ConnectorError, leaving what it built in `parts`.
void start_parts(const Config& config, ConnectorParts& parts) {
  parts.entra = start_entra_tokens(config);
  // The name check too: with REDIS_AUTH=entra it needs the token.
  ensure_consumer_name_is_free(config,
                               redis_options_from_config(config, config.streams.front(), parts.entra.redis));
  // Constructing connects nothing; the endpoint needs the pipelines and the outputs to read from.
  build_workers(config, parts);
  parts.observability = make_observability(config, parts);
  parts.observability->start();  // bound first, so a taken port fails before anything connects
  // Each pipeline starts its output (a lease starts the shared one once).
  for (auto& worker : parts.workers) worker->pipeline().start();
}

void log_started(const Config& config) {
  logger().info("connector_started",
                {{"version", build_version()},
                 {"commit", build_commit()},
                 {"http_address", config.http_address ? config.http_address->describe() : "off"},
                 {"stream", stream_keys_text(config)},
                 {"group", config.consumer_group},
                 {"consumer", config.consumer_name},
                 {"batch_size", config.tuning.batch_size},
                 {"max_in_flight_batches", config.tuning.max_in_flight_batches}});
}

/// Stops what start_parts() built. The pipelines drain and stop the output within SHUTDOWN_GRACE_PERIOD_MS,
/// acking what it confirms meanwhile.
void stop_parts(ConnectorParts& parts) {
  stop_pipelines(parts);
  if (parts.observability) parts.observability->stop();
}
}  // namespace

int run_connector(const Config& config) {
  warn_if_tls_unverified(config);
  StartupSignalWatcher startup_signals;
  ConnectorParts parts;
  int status = kExitOk;
  try {
    start_parts(config, parts);
    startup_signals.disarm();
    log_started(config);
    status = supervise(parts);
  } catch (const ConnectorError& error) {
    status = report_failure("startup_failed", error);
  }
  startup_signals.disarm();  // a failed start must keep its exit status
  stop_parts(parts);
  logger().info("connector_stopped", {{"exit_status", status}});
  return status;
}

}  // namespace connector
