// fake-eventhubs against Microsoft's official JavaScript client (@azure/event-hubs, tests/interop/send.mjs):
// proves that what the fake speaks is what a real Event Hubs client expects, in plain and TLS mode.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "support/child_process.hpp"
#include "support/fake_eventhubs_server.hpp"

namespace connector::testing {
namespace {

using namespace std::chrono_literals;

bool command_exists(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

/// tests/interop copied into a temp dir with its locked dependencies installed by `npm ci`.
class InteropProject {
 public:
  InteropProject() {
    const std::filesystem::path source = std::filesystem::path(SOURCE_DIR) / "tests" / "interop";
    for (const char* file : {"package.json", "package-lock.json", "send.mjs"}) {
      std::filesystem::copy_file(source / file, dir_.path() / file);
    }
    const std::string command =
        "cd '" + dir_.path().string() + "' && npm ci --no-audit --no-fund --prefer-offline > npm-ci.log 2>&1";
    installed_ = std::system(command.c_str()) == 0;
  }
  bool installed() const { return installed_; }
  std::string install_log() const {
    std::ifstream in(dir_.path() / "npm-ci.log");
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::filesystem::path& path() const { return dir_.path(); }

 private:
  TempDir dir_;
  bool installed_ = false;
};

void expect_the_script_events(FakeEventHubsServer& server) {
  const auto events = server.events();
  ASSERT_EQ(events.size(), 5u) << server.log();
  // The keyed batch: one AMQP delivery (batch format) carrying three events, all in one partition.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(events[i].partition_key, "customer-42");
    EXPECT_EQ(events[i].partition, events[0].partition);
    EXPECT_EQ(events[i].content_type, "application/json");
    EXPECT_EQ(events[i].properties.at("redis-id"), "1700000000000-" + std::to_string(i));
    EXPECT_EQ(events[i].properties.at("redis-stream"), "orders");
    EXPECT_EQ(events[i].body, R"({"order":)" + std::to_string(i) + R"(,"note":"keyed"})");
    EXPECT_EQ(events[i].body_kind, "data");
  }
  // The batch to partition "1".
  EXPECT_EQ(events[3].partition, "1");
  EXPECT_FALSE(events[3].partition_key.has_value());
  EXPECT_EQ(events[3].properties.at("redis-id"), "1700000000001-0");
  EXPECT_EQ(events[3].body, R"("plain text to partition 1")");  // the SDK JSON-encodes string bodies
  EXPECT_EQ(events[4].partition, "1");
  EXPECT_EQ(events[4].body, std::string("\xff\x00\x41", 3));
}

class fake_eventhubs_interop_test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!command_exists("node") || !command_exists("npm")) {
      GTEST_SKIP() << "node and npm are not installed: the @azure/event-hubs interop test needs them "
                      "(scripts/setup installs Node.js)";
    }
    project_ = std::make_unique<InteropProject>();
    ASSERT_TRUE(project_->installed()) << "npm ci failed:\n" << project_->install_log();
  }

  int run_script(const FakeEventHubsServer& server, std::map<std::string, std::string> env) {
    env["FAKE_EVENTHUBS_CONNECTION_STRING"] = server.connection_string();
    ChildProcess node({"/usr/bin/env", "node", "send.mjs"}, project_->path() / "send.log", env,
                      project_->path());
    const int status = node.wait(90s);
    output_ = node.log();
    return status;
  }

  std::unique_ptr<InteropProject> project_;
  std::string output_;
};

TEST_F(fake_eventhubs_interop_test, official_client_sends_over_plain_amqp_in_emulator_mode) {
  FakeEventHubsServer server;
  ASSERT_NE(server.connection_string().find("UseDevelopmentEmulator=true"), std::string::npos);
  ASSERT_EQ(run_script(server, {}), 0) << output_ << "\n--- server ---\n" << server.log();
  EXPECT_NE(output_.find(R"("partitionIds":["0","1","2","3"])"), std::string::npos) << output_;
  EXPECT_NE(output_.find(R"("partition1LastSequenceNumber":1)"), std::string::npos) << output_;
  expect_the_script_events(server);
}

TEST_F(fake_eventhubs_interop_test, official_client_sends_over_tls_trusting_the_test_ca) {
  FakeEventHubsServer server([] {
    FakeEventHubsOptions options;
    options.tls = true;
    return options;
  }());
  ASSERT_EQ(server.connection_string().find("UseDevelopmentEmulator"), std::string::npos);
  const int status = run_script(server, {{"NODE_EXTRA_CA_CERTS", server.certificates()->ca_cert.string()}});
  ASSERT_EQ(status, 0) << output_ << "\n--- server ---\n" << server.log();
  expect_the_script_events(server);
}

}  // namespace
}  // namespace connector::testing
