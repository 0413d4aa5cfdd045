#include "app/connector_app.hpp"

#include <signal.h>
#include <unistd.h>

#include <thread>

#include "common/errors.hpp"
#include "core/pipeline.hpp"
#include "eventhubs/eventhubs_sink.hpp"
#include "observability/logger.hpp"
#include "sinks/blackhole_sink.hpp"
#include "sinks/local_file_sink.hpp"

namespace connector {

RedisConnectionOptions redis_options_from_config(const Config& config) {
  RedisConnectionOptions options;
  options.endpoint = config.redis;
  options.tls = config.redis_tls;
  options.client_name = config.consumer_name;
  return options;
}

StreamConsumerOptions stream_options_from_config(const Config& config) {
  StreamConsumerOptions options;
  options.stream_key = config.stream_key;
  options.group = config.consumer_group;
  options.consumer = config.consumer_name;
  options.group_start_id = config.group_start_id;
  options.dead_letter_stream = config.dead_letter_stream;
  return options;
}

EncoderOptions encoder_options_from_config(const Config& config) {
  return EncoderOptions{config.stream_key, config.message_body_field, config.partition_key_field};
}

std::unique_ptr<Sink> make_sink(const Config& config) {
  switch (config.output) {
    case OutputType::LocalFile:
      return std::make_unique<LocalFileSink>(
          LocalFileSinkOptions{config.output_directory, config.output_fsync, config.stream_key,
                               config.output_layout, config.output_writers});
    case OutputType::Blackhole:
      return std::make_unique<BlackholeSink>();
    case OutputType::EventHubs:
      return std::make_unique<EventHubsSink>(EventHubsSinkOptions::from_config(config));
  }
  throw ConfigurationError({"OUTPUT_ADAPTER_TYPE: unknown output"});
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
const char* signal_name(int signo) { return signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "signal"; }

/// Waits for SIGINT/SIGTERM or a fatal pipeline error; runs stop() on its own thread so that a
/// second signal can still end the process at once.
int supervise(Pipeline& pipeline) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  const timespec tick{0, 200'000'000};
  std::thread stopper;
  std::atomic<bool> stopped{false};
  int status = kExitOk;
  for (;;) {
    const int signo = ::sigtimedwait(&set, nullptr, &tick);
    if (signo > 0) {
      if (stopper.joinable()) {
        logger().warn("forced_exit", {{"signal", signal_name(signo)},
                                      {"note", "unacked entries stay pending in Redis and are redelivered"}});
        std::fflush(stdout);
        ::_exit(kExitFatal);
      }
      logger().info("shutdown_requested", {{"signal", signal_name(signo)}});
      stopper = std::thread([&] {
        pipeline.stop();
        stopped = true;
      });
    }
    if (!stopper.joinable()) {
      if (auto fatal = pipeline.fatal_error()) {
        status = kExitFatal;
        stopper = std::thread([&] {
          pipeline.stop();
          stopped = true;
        });
      }
    }
    if (stopped) break;
  }
  stopper.join();
  return status;
}
}  // namespace

int run_connector(const Config& config) {
  if (config.redis.scheme == RedisEndpoint::Scheme::Tls && config.redis_tls.insecure) {
    logger().warn("redis_tls_insecure", {{"address", config.redis.describe()},
                                         {"note", "REDIS_TLS_INSECURE=true: the server's certificate is not verified"}});
  }
  std::unique_ptr<Sink> sink;
  try {
    sink = make_sink(config);
    sink->start();
  } catch (const ConfigurationError& error) {
    logger().fatal(error.what());
    return kExitInvalidConfiguration;
  } catch (const EventHubsError& error) {
    logger().fatal(error.what());
    return kExitCannotConnect;
  } catch (const ConnectorError& error) {
    logger().fatal(error.what());
    return kExitFatal;
  }

  Pipeline pipeline(PipelineOptions::from_config(config), redis_options_from_config(config),
                    stream_options_from_config(config), Encoder(encoder_options_from_config(config)), *sink);
  int status = kExitOk;
  try {
    pipeline.start();
    logger().info("connector_started", {{"stream", config.stream_key},
                                        {"group", config.consumer_group},
                                        {"consumer", config.consumer_name},
                                        {"batch_size", config.batch_size},
                                        {"max_in_flight_batches", config.max_in_flight_batches}});
    status = supervise(pipeline);
  } catch (const ConfigurationError& error) {
    logger().fatal(error.what());
    status = kExitInvalidConfiguration;
  } catch (const RedisConnectionError& error) {
    logger().fatal(error.what());
    status = kExitCannotConnect;
  } catch (const ConnectorError& error) {
    logger().fatal(error.what());
    status = kExitFatal;
  }
  pipeline.stop();
  sink->stop(config.shutdown_grace);
  logger().info("connector_stopped", {{"exit_status", status}});
  return status;
}

}  // namespace connector
