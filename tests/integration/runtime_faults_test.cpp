// Faults that arrive while the connector runs, seen from outside: the real binary, a real redis-server.
#include <gtest/gtest.h>

#include "support/child_process.hpp"
#include "support/connector_process.hpp"
#include "support/redis_server.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using testing::ConnectorProcess;
using testing::RedisServer;
using testing::TempDir;

// The stream key becomes a string and both connections drop: the reader and the acker meet the same
// ConfigurationError while reconnecting, and both stop the connector the same way: exit status 2.
TEST(runtime_faults_test, a_stream_key_turned_into_a_string_while_running_exits_2_naming_the_key) {
  RedisServer redis;
  TempDir dir;
  const std::string stream = "rt:stream";
  redis.command({"XADD", stream, "*", "n", "1"});
  ConnectorProcess connector({{"REDIS_URL", redis.url()},
                              {"STREAM_KEY", stream},
                              {"CONSUMER_GROUP_NAME", "rt-group"},
                              {"CONSUMER_NAME", "rt-consumer"},
                              {"GROUP_START_ID", "0"},
                              {"OUTPUT_ADAPTER_TYPE", "BLACKHOLE"},
                              {"POLL_TIMEOUT_MS", "200"},
                              {"RETRY_DELAY_MS", "100"}},
                             dir.path());
  ASSERT_TRUE(connector.wait_started()) << connector.log();
  redis.command({"DEL", stream});
  redis.command({"SET", stream, "not a stream any more"});
  redis.command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
  EXPECT_EQ(connector.process().wait(30s), 2) << connector.log();
  const std::string log = connector.log();
  EXPECT_NE(log.find("the key 'rt:stream' holds a string"), std::string::npos) << log;
  EXPECT_NE(log.find("invalid_configuration"), std::string::npos) << log;
}

}  // namespace
}  // namespace connector
