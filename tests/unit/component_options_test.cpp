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
  EventHubsSinkOptions options = eventhubs_options_from_config(config);
  EXPECT_EQ(options.hub, "from-entity-path");
  EXPECT_EQ(options.connection.host, "ns.servicebus.windows.net");
  EXPECT_EQ(options.partition_id, std::optional<std::string>("3"));
  EXPECT_EQ(options.ca_file, "/ca.pem");
  EXPECT_EQ(options.max_in_flight_events, 2000u);
  EXPECT_EQ(options.retry_delay, milliseconds(1234));
  config.event_hub_name = "named";
  EXPECT_EQ(eventhubs_options_from_config(config).hub, "named");
  config.eventhubs.reset();
  EXPECT_THROW(eventhubs_options_from_config(config), ConfigurationError);
}

TEST(component_options_test, pipeline_options_take_the_tuning_and_cap_the_back_off) {
  Config config = default_config();
  PipelineOptions options = pipeline_options_from_config(config);
  EXPECT_EQ(options.batch_size, 100u);
  EXPECT_EQ(options.max_delivery_attempts, 10u);
  EXPECT_EQ(options.claim_min_idle, milliseconds(60000));
  EXPECT_EQ(options.max_retry_delay, milliseconds(60000));
  config.tuning.retry_delay = milliseconds(90000);
  EXPECT_EQ(pipeline_options_from_config(config).max_retry_delay, milliseconds(90000));
}

TEST(component_options_test, local_file_and_observability_options) {
  Config config = default_config();
  config.stream_key = "s";
  const LocalFileSinkOptions files = local_file_options_from_config(config);
  EXPECT_EQ(files.directory, std::filesystem::path("./output"));
  EXPECT_TRUE(files.fsync);
  EXPECT_EQ(files.stream_key, "s");
  EXPECT_EQ(files.layout, OutputLayout::Flat);
  EXPECT_EQ(files.writers, 2u);
  const ObservabilityOptions observability = observability_options_from_config(config);
  ASSERT_TRUE(observability.http_address.has_value());
  EXPECT_EQ(observability.http_address->describe(), "0.0.0.0:9464");
  EXPECT_EQ(observability.stats_interval, milliseconds(60000));
  // A blocking read, the longest back-off, and a margin for a reconnect.
  EXPECT_EQ(observability.stuck_after, milliseconds(5000 + 60000 + 60000));
  EXPECT_FALSE(observability.eventhubs_output);
}

}  // namespace
}  // namespace connector
