#include "sinks/local_file_sink.hpp"

#include <sys/stat.h>

#include <fstream>
#include <future>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/encoder.hpp"
#include "support/child_process.hpp"

namespace connector {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Batch encode(const Encoder& encoder, const std::vector<StreamEntry>& entries) {
  Batch batch;
  for (const auto& entry : entries) batch.push_back(encoder.encode(entry));
  return batch;
}

std::vector<Completion> send_and_wait(Sink& sink, Batch batch) {
  std::promise<std::vector<Completion>> promise;
  auto future = promise.get_future();
  std::vector<Completion> all;
  const std::size_t expected = batch.size();
  sink.send(std::move(batch), [&](std::vector<Completion> completions) {
    all.insert(all.end(), completions.begin(), completions.end());
    if (all.size() == expected) promise.set_value(all);
  });
  EXPECT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  return future.get();
}

TEST(local_file_sink_test, writes_one_valid_json_file_per_entry) {
  testing::TempDir dir;
  LocalFileSink sink({dir.path() / "out" / "nested", true, "telemetry"});
  sink.start();
  Encoder encoder({"telemetry", std::nullopt, std::string("device")});
  const auto completions = send_and_wait(
      sink, encode(encoder, {{"1-0", {{"device", "d1"}, {"t", "1"}}}, {"1-1", {{"bin", std::string("\xFF\x00", 2)}}}}));
  ASSERT_EQ(completions.size(), 2u);
  for (const auto& completion : completions) EXPECT_EQ(completion.outcome, Outcome::Accepted) << completion.reason;

  const auto first = nlohmann::json::parse(read_file(dir.path() / "out" / "nested" / "1-0.json"));
  EXPECT_EQ(first["id"], "1-0");
  EXPECT_EQ(first["stream"], "telemetry");
  EXPECT_EQ(first["partitionKey"], "d1");
  EXPECT_EQ(first["bodyEncoding"], "json");
  EXPECT_EQ(first["body"]["t"], "1");
  EXPECT_EQ(first["properties"]["redis-id"], "1-0");
  EXPECT_EQ(first["contentType"], "application/json");
  const auto second = nlohmann::json::parse(read_file(dir.path() / "out" / "nested" / "1-1.json"));
  EXPECT_EQ(second["body"]["bin"]["$base64"], "/wA=");
  EXPECT_TRUE(second["partitionKey"].is_null());
  sink.stop(std::chrono::milliseconds(1000));
  // No temporary file is left behind.
  std::size_t files = 0;
  for (const auto& item : std::filesystem::directory_iterator(dir.path() / "out" / "nested")) {
    EXPECT_EQ(item.path().extension(), ".json") << item.path();
    ++files;
  }
  EXPECT_EQ(files, 2u);
}

TEST(local_file_sink_test, raw_body_is_utf8_text_or_base64) {
  testing::TempDir dir;
  LocalFileSink sink({dir.path(), false, "s"});
  sink.start();
  Encoder encoder({"s", std::string("payload"), std::nullopt});
  send_and_wait(sink, encode(encoder, {{"2-0", {{"payload", "hello"}}}, {"2-1", {{"payload", "\x89PNG\xFF"}}}}));
  const auto text = nlohmann::json::parse(read_file(dir.path() / "2-0.json"));
  EXPECT_EQ(text["bodyEncoding"], "utf8");
  EXPECT_EQ(text["body"], "hello");
  EXPECT_TRUE(text["contentType"].is_null());
  const auto binary = nlohmann::json::parse(read_file(dir.path() / "2-1.json"));
  EXPECT_EQ(binary["bodyEncoding"], "base64");
  EXPECT_EQ(binary["body"], "iVBOR/8=");
}

TEST(local_file_sink_test, redelivery_overwrites_the_same_file) {
  testing::TempDir dir;
  LocalFileSink sink({dir.path(), true, "s"});
  sink.start();
  Encoder encoder({"s", std::nullopt, std::nullopt});
  send_and_wait(sink, encode(encoder, {{"3-0", {{"v", "first"}}}}));
  send_and_wait(sink, encode(encoder, {{"3-0", {{"v", "second"}}}}));
  EXPECT_EQ(nlohmann::json::parse(read_file(dir.path() / "3-0.json"))["body"]["v"], "second");
}

TEST(local_file_sink_test, an_id_that_is_not_a_stream_id_is_rejected_not_written) {
  testing::TempDir dir;
  LocalFileSink sink({dir.path(), false, "s"});
  sink.start();
  Event event;
  event.entry_id = "../../etc/passwd";
  Batch batch;
  batch.push_back(event);
  const auto completions = send_and_wait(sink, std::move(batch));
  ASSERT_EQ(completions.size(), 1u);
  EXPECT_EQ(completions[0].outcome, Outcome::Reject);
}

TEST(local_file_sink_test, unwritable_directory_fails_at_start_with_the_path) {
  testing::TempDir dir;
  std::ofstream(dir.path() / "file") << "x";
  LocalFileSink sink({dir.path() / "file" / "sub", true, "s"});
  try {
    sink.start();
    FAIL() << "expected an error";
  } catch (const std::exception& error) {
    EXPECT_NE(std::string(error.what()).find("OUTPUT_DIRECTORY"), std::string::npos) << error.what();
  }
}

TEST(local_file_sink_test, write_failure_is_retry_not_accept) {
  testing::TempDir dir;
  LocalFileSink sink({dir.path() / "out", false, "s"});
  sink.start();
  // A directory where the file should go makes rename() fail.
  std::filesystem::create_directories(dir.path() / "out" / "4-0.json" / "blocker");
  Encoder encoder({"s", std::nullopt, std::nullopt});
  const auto completions = send_and_wait(sink, encode(encoder, {{"4-0", {{"v", "x"}}}, {"4-1", {{"v", "y"}}}}));
  ASSERT_EQ(completions.size(), 2u);
  EXPECT_EQ(completions[0].outcome, Outcome::Retry);
  EXPECT_NE(completions[0].reason.find("4-0.json"), std::string::npos);
  EXPECT_EQ(completions[1].outcome, Outcome::Accepted);
}

}  // namespace
}  // namespace connector
