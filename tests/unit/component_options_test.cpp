#include "app/component_options.hpp"

#include <gtest/gtest.h>

#include "common/errors.hpp"
#include "config/config_loader.hpp"

namespace connector {
namespace {

using std::chrono::milliseconds;

TEST(component_options_test, eventhubs_options_take_the_event_hubs_settings) {
  Config config = default_config();
  EventHubsConnectionString c;
  c.host = "ns.servicebus.windows.net";
  c.entity_path = "from-entity-path";
  config.eventhubs = c;
  config.partition_id = "3";
  config.eventhubs_ca_file = "/ca.pem";
  config.tuning.batch_size = 250;
  config.tuning.max_in_flight_batches = 8;
  config.tuning.retry_delay = milliseconds(1234);
  config.eventhubs_sender_links = 3;
  EventHubsSinkOptions options = eventhubs_options_from_config(config);
  EXPECT_EQ(options.hub, "from-entity-path");
  EXPECT_EQ(options.connection.host, "ns.servicebus.windows.net");
  EXPECT_EQ(options.partition_id, std::optional<std::string>("3"));
  EXPECT_EQ(options.ca_file, "/ca.pem");
  EXPECT_EQ(options.max_in_flight_events, 2000u);
  EXPECT_EQ(options.retry_delay, milliseconds(1234));
  EXPECT_EQ(options.sender_links, 3u);
  EXPECT_EQ(options.max_retry_delay, milliseconds(60000));
  // The back-off cap is the connector's, not a default of the options: a longer base raises it.
  config.tuning.retry_delay = milliseconds(90000);
  EXPECT_EQ(eventhubs_options_from_config(config).max_retry_delay, milliseconds(90000));
  config.event_hub_name = "named";
  EXPECT_EQ(eventhubs_options_from_config(config).hub, "named");
  config.eventhubs.reset();
  EXPECT_THROW(eventhubs_options_from_config(config), ConfigurationError);
}

TEST(component_options_test, websockets_go_to_443_through_the_proxy_unless_no_proxy_names_the_host) {
  Config config = default_config();
  EventHubsConnectionString c;
  c.host = "ns.servicebus.windows.net";
  c.port = 5671;
  c.entity_path = "hub";
  config.eventhubs = c;
  config.eventhubs_ca_file = "/ca.pem";
  EXPECT_FALSE(eventhubs_options_from_config(config).websocket.has_value()) << "amqp is the default";

  config.eventhubs_transport = EventHubsTransport::WebSockets;
  config.https_proxy = parse_proxy_url("http://user:pw@proxy:3128");
  auto ws = eventhubs_options_from_config(config).websocket.value();
  EXPECT_EQ(ws.host, "ns.servicebus.windows.net");
  EXPECT_EQ(ws.port, 443);
  EXPECT_TRUE(ws.tls);
  EXPECT_EQ(ws.ca_file, "/ca.pem");
  ASSERT_TRUE(ws.proxy.has_value());
  EXPECT_EQ(ws.proxy->authority(), "proxy:3128");
  EXPECT_EQ(ws.proxy->password, "pw");

  config.no_proxy = NoProxy::parse("other.example,.windows.net");
  EXPECT_FALSE(eventhubs_options_from_config(config).websocket->proxy.has_value());

  config.eventhubs->port = 9443;  // an Endpoint with a port keeps it (tests, private endpoints)
  config.eventhubs->port_explicit = true;
  EXPECT_EQ(eventhubs_options_from_config(config).websocket->port, 9443);
  config.eventhubs->use_development_emulator = true;
  config.eventhubs->port_explicit = false;
  ws = eventhubs_options_from_config(config).websocket.value();
  EXPECT_FALSE(ws.tls) << "the emulator's connection string: ws://";
  EXPECT_EQ(ws.port, 80);
}

TEST(component_options_test, pipeline_options_take_the_tuning_and_cap_the_back_off) {
  Config config = default_config();
  config.tuning.batch_size = 123;
  config.tuning.max_delivery_attempts = 7;
  config.tuning.claim_min_idle = milliseconds(4567);
  PipelineOptions options = pipeline_options_from_config(config);
  EXPECT_EQ(options.batch_size, 123u);
  EXPECT_EQ(options.max_delivery_attempts, 7u);
  EXPECT_EQ(options.claim_min_idle, milliseconds(4567));
  EXPECT_EQ(options.max_retry_delay, milliseconds(60000));
  config.tuning.retry_delay = milliseconds(90000);
  EXPECT_EQ(pipeline_options_from_config(config).max_retry_delay, milliseconds(90000));
}

TEST(component_options_test, local_file_and_observability_options) {
  Config config = default_config();
  config.streams = {{"s", "s:dead-letter"}};
  config.output_writers = 5;
  config.output_directory = "/files";
  config.output_fsync = false;
  config.output_layout = OutputLayout::Hourly;
  config.tuning.poll_timeout = milliseconds(700);
  const LocalFileSinkOptions files = local_file_options_from_config(config, config.streams.front());
  EXPECT_EQ(files.directory, std::filesystem::path("/files"));
  EXPECT_FALSE(files.fsync);
  EXPECT_EQ(files.stream_key, "s");
  EXPECT_EQ(files.layout, OutputLayout::Hourly);
  EXPECT_EQ(files.writers, 5u);
  const ObservabilityOptions observability = observability_options_from_config(config);
  ASSERT_TRUE(observability.http_address.has_value());
  EXPECT_EQ(observability.http_address->describe(), config.http_address->describe());
  EXPECT_EQ(observability.stats_interval, config.stats_interval);
  // A blocking read, the longest back-off, and a margin for a reconnect.
  EXPECT_EQ(observability.stuck_after, milliseconds(700 + 60000 + 60000));
  EXPECT_FALSE(observability.eventhubs_output);
  ASSERT_EQ(observability.streams.size(), 1u);
  EXPECT_EQ(observability.streams[0].stream_key, "s");
}

TEST(component_options_test, several_streams_write_files_each_into_a_directory_of_its_own) {
  Config config = default_config();
  config.output_directory = "/files";
  config.streams = {{"telemetry:{0}", ""}, {"../up/and/away", ""}, {".hidden%", ""}};
  EXPECT_EQ(local_file_options_from_config(config, config.streams[0]).directory, "/files/telemetry:{0}");
  EXPECT_EQ(local_file_options_from_config(config, config.streams[1]).directory, "/files/%2E.%2Fup%2Fand%2Faway");
  EXPECT_EQ(local_file_options_from_config(config, config.streams[2]).directory, "/files/%2Ehidden%25");
  EXPECT_EQ(local_file_options_from_config(config, config.streams[2]).stream_key, ".hidden%");
  config.streams.resize(1);
  EXPECT_EQ(local_file_options_from_config(config, config.streams[0]).directory, "/files") << "one stream: as before";
}

}  // namespace
}  // namespace connector
