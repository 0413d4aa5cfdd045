#include "sinks/local_file_sink.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/errno_text.hpp"
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
  const auto completions =
      send_and_wait(sink, encode(encoder, {{"1-0", {{"device", "d1"}, {"t", "1"}}},
                                           {"1-1", {{"bin", std::string("\xFF\x00", 2)}}}}));
  ASSERT_EQ(completions.size(), 2u);
  for (const auto& completion : completions)
    EXPECT_EQ(completion.outcome, Outcome::Accepted) << completion.reason;

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

TEST(local_file_sink_test, a_reported_batch_comes_back_for_the_next_one_to_be_encoded_into) {
  testing::TempDir dir;
  LocalFileSink sink({dir.path(), true, "telemetry"});
  sink.start();
  EXPECT_TRUE(sink.spare_batch().empty());
  Encoder encoder({"telemetry", std::nullopt, std::nullopt});
  send_and_wait(sink, encode(encoder, {{"1-0", {{"t", "1"}}}, {"1-1", {{"t", "2"}}}}));
  // Given back by the thread that reported it, just after its callback.
  Batch spare;
  testing::wait_until([&] { return !(spare = sink.spare_batch()).empty(); }, std::chrono::seconds(5));
  ASSERT_EQ(spare.size(), 2u);
  EXPECT_EQ(spare[1].entry_id, "1-1");
  sink.stop(std::chrono::milliseconds(1000));
}

TEST(local_file_sink_test, choosing_how_to_name_files_leaves_nothing_behind) {
  testing::TempDir dir;
  const int directory = ::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(directory, 0);
  const FileNaming first = probe_file_naming(directory);
  // A probe file left by a process that crashed mid-probe (same PID after a restart in a container).
  std::ofstream(dir.path() / fmt::format(".connector-probe.{}.tmp", ::getpid())) << "x";
  EXPECT_EQ(probe_file_naming(directory), first);
  ::close(directory);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(local_file_sink_test, raw_body_is_utf8_text_or_base64) {
  testing::TempDir dir;
  LocalFileSink sink({dir.path(), false, "s"});
  sink.start();
  Encoder encoder({"s", std::string("payload"), std::nullopt});
  send_and_wait(sink,
                encode(encoder, {{"2-0", {{"payload", "hello"}}}, {"2-1", {{"payload", "\x89PNG\xFF"}}}}));
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
  EXPECT_EQ(completions[0].cause, Cause::Unencodable);
}

TEST(local_file_sink_test, errno_names_the_cause_of_a_failed_write) {
  EXPECT_EQ(cause_of_errno(ETIMEDOUT), Cause::Timeout);
  for (const int error : {ECONNREFUSED, ECONNRESET, ECONNABORTED, EPIPE}) {
    EXPECT_EQ(cause_of_errno(error), Cause::Connection) << error;
  }
  for (const int error : {ENOSPC, EROFS, EIO, EACCES, EDQUOT, ENOTDIR})
    EXPECT_EQ(cause_of_errno(error), Cause::Io) << error;
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
  const auto completions =
      send_and_wait(sink, encode(encoder, {{"4-0", {{"v", "x"}}}, {"4-1", {{"v", "y"}}}}));
  ASSERT_EQ(completions.size(), 2u);
  EXPECT_EQ(completions[0].outcome, Outcome::Retry);
  EXPECT_NE(completions[0].reason.find("4-0.json"), std::string::npos);
  EXPECT_EQ(completions[0].cause, Cause::Io);
  EXPECT_EQ(completions[1].outcome, Outcome::Accepted);
}

TEST(local_file_sink_test, a_removed_and_recreated_directory_is_reopened) {
  testing::TempDir dir;
  const auto output = dir.path() / "out";
  LocalFileSink sink({output, true, "s"});
  sink.start();
  Encoder encoder({"s", std::nullopt, std::nullopt});
  ASSERT_EQ(send_and_wait(sink, encode(encoder, {{"5-0", {{"v", "x"}}}}))[0].outcome, Outcome::Accepted);
  // An operator cleans up: the directory the sink holds open is gone, a new one has the same path.
  std::filesystem::remove_all(output);
  std::filesystem::create_directories(output);
  const auto completions = send_and_wait(sink, encode(encoder, {{"5-1", {{"v", "y"}}}}));
  ASSERT_EQ(completions.size(), 1u);
  EXPECT_EQ(completions[0].outcome, Outcome::Accepted) << completions[0].reason;
  EXPECT_TRUE(std::filesystem::exists(output / "5-1.json"));
}

TEST(local_file_sink_test, a_removed_directory_is_created_again) {
  testing::TempDir dir;
  const auto output = dir.path() / "out";
  LocalFileSink sink({output, false, "s"});
  sink.start();
  std::filesystem::remove_all(output);
  Encoder encoder({"s", std::nullopt, std::nullopt});
  const auto completions = send_and_wait(sink, encode(encoder, {{"6-0", {{"v", "x"}}}}));
  ASSERT_EQ(completions.size(), 1u);
  EXPECT_EQ(completions[0].outcome, Outcome::Accepted) << completions[0].reason;
  EXPECT_TRUE(std::filesystem::exists(output / "6-0.json"));
}

TEST(local_file_sink_test, a_directory_moved_away_is_not_written_to_any_more) {
  testing::TempDir dir;
  const auto output = dir.path() / "out";
  LocalFileSink sink({output, false, "s"});
  sink.start();
  Encoder encoder({"s", std::nullopt, std::nullopt});
  send_and_wait(sink, encode(encoder, {{"7-0", {{"v", "x"}}}}));
  std::filesystem::rename(output, dir.path() / "archived");
  std::filesystem::create_directories(output);
  const auto completions = send_and_wait(sink, encode(encoder, {{"7-1", {{"v", "y"}}}}));
  ASSERT_EQ(completions.size(), 1u);
  EXPECT_EQ(completions[0].outcome, Outcome::Accepted) << completions[0].reason;
  EXPECT_TRUE(std::filesystem::exists(output / "7-1.json"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "archived" / "7-1.json"));
}

TEST(local_file_sink_test, hourly_paths_come_from_the_id_time_in_utc) {
  EXPECT_EQ(relative_file_of("0-0", OutputLayout::Hourly), "1970/01/01/00/0-0.json");
  EXPECT_EQ(relative_file_of("1732700000000-0", OutputLayout::Hourly), "2024/11/27/09/1732700000000-0.json");
  // The last millisecond of an hour, and the first of the next (here also of the next year).
  EXPECT_EQ(relative_file_of("1732701599999-3", OutputLayout::Hourly), "2024/11/27/09/1732701599999-3.json");
  EXPECT_EQ(relative_file_of("1732701600000-0", OutputLayout::Hourly), "2024/11/27/10/1732701600000-0.json");
  EXPECT_EQ(relative_file_of("1735689599999-0", OutputLayout::Hourly), "2024/12/31/23/1735689599999-0.json");
  EXPECT_EQ(relative_file_of("1735689600000-0", OutputLayout::Hourly), "2025/01/01/00/1735689600000-0.json");
  EXPECT_EQ(relative_file_of("18446744073709551615-0", OutputLayout::Hourly),
            "584556019/04/03/14/18446744073709551615-0.json");
  EXPECT_EQ(relative_file_of("1732700000000-0", OutputLayout::Flat), "1732700000000-0.json");
  EXPECT_EQ(relative_file_of("../1-0", OutputLayout::Hourly), "");
  EXPECT_EQ(relative_file_of("18446744073709551616-0", OutputLayout::Hourly), "");
}

std::vector<std::filesystem::path> files_under(const std::filesystem::path& root) {
  std::vector<std::filesystem::path> files;
  for (const auto& item : std::filesystem::recursive_directory_iterator(root)) {
    if (item.is_regular_file()) files.push_back(std::filesystem::relative(item.path(), root));
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(local_file_sink_test, hourly_layout_writes_into_utc_hour_directories_and_survives_a_restart) {
  testing::TempDir dir;
  const auto output = dir.path() / "out";
  Encoder encoder({"s", std::nullopt, std::nullopt});
  const std::vector<StreamEntry> entries = {{"1732701599999-0", {{"v", "a"}}},
                                            {"1732701600000-0", {{"v", "b"}}},
                                            {"1732701600000-1", {{"v", "c"}}}};
  for (const char* run : {"first", "second"}) {
    LocalFileSink sink({output, true, "s", OutputLayout::Hourly, 2});
    sink.start();
    auto batch = encode(encoder, entries);
    batch[0].body = std::string(R"({"run":")") + run + "\"}";
    for (const auto& completion : send_and_wait(sink, std::move(batch))) {
      EXPECT_EQ(completion.outcome, Outcome::Accepted) << completion.reason;
    }
    sink.stop(std::chrono::milliseconds(1000));
  }
  // The same names after the restart: the redelivered entry replaced its file, no temporary is left.
  EXPECT_EQ(files_under(output), (std::vector<std::filesystem::path>{"2024/11/27/09/1732701599999-0.json",
                                                                     "2024/11/27/10/1732701600000-0.json",
                                                                     "2024/11/27/10/1732701600000-1.json"}));
  EXPECT_EQ(nlohmann::json::parse(read_file(output / "2024/11/27/09/1732701599999-0.json"))["body"]["run"],
            "second");
}

TEST(local_file_sink_test, a_removed_hour_directory_is_created_again) {
  testing::TempDir dir;
  const auto output = dir.path() / "out";
  LocalFileSink sink({output, false, "s", OutputLayout::Hourly, 1});
  sink.start();
  Encoder encoder({"s", std::nullopt, std::nullopt});
  send_and_wait(sink, encode(encoder, {{"1732700000000-0", {{"v", "a"}}}}));
  std::filesystem::remove_all(output / "2024");  // a clean-up job, while the sink holds the hour open
  const auto completions = send_and_wait(sink, encode(encoder, {{"1732700000001-0", {{"v", "b"}}}}));
  EXPECT_EQ(completions[0].outcome, Outcome::Accepted) << completions[0].reason;
  EXPECT_TRUE(std::filesystem::exists(output / "2024/11/27/09/1732700000001-0.json"));
}

TEST(local_file_sink_test, several_writers_report_each_entry_once_and_only_after_its_file_exists) {
  testing::TempDir dir;
  const auto output = dir.path() / "out";
  LocalFileSink sink({output, true, "s", OutputLayout::Hourly, 4});
  sink.start();
  Encoder encoder({"s", std::nullopt, std::nullopt});
  constexpr std::size_t kBatches = 8;
  constexpr std::size_t kPerBatch = 250;
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::vector<int>> reported(kBatches, std::vector<int>(kPerBatch, 0));
  std::vector<std::string> problems;
  std::size_t total = 0;
  for (std::size_t b = 0; b < kBatches; ++b) {
    std::vector<StreamEntry> entries;
    // Spread over two hours, so that writers also create directories concurrently.
    for (std::size_t i = 0; i < kPerBatch; ++i) {
      entries.push_back({fmt::format("{}-{}", 1732701599000 + (b * kPerBatch + i) * 3, i), {{"v", "x"}}});
    }
    sink.send(encode(encoder, entries), [&, b, entries](std::vector<Completion> completions) {
      std::lock_guard lock(mutex);
      for (const auto& completion : completions) {
        ++reported[b][completion.index];
        const auto file = output / relative_file_of(entries[completion.index].id, OutputLayout::Hourly);
        if (completion.outcome != Outcome::Accepted) problems.push_back(completion.reason);
        if (!std::filesystem::exists(file)) problems.push_back("reported before written: " + file.string());
        ++total;
      }
      changed.notify_all();
    });
  }
  std::unique_lock lock(mutex);
  ASSERT_TRUE(
      changed.wait_for(lock, std::chrono::seconds(30), [&] { return total >= kBatches * kPerBatch; }));
  lock.unlock();
  sink.stop(std::chrono::milliseconds(1000));
  EXPECT_TRUE(problems.empty()) << problems.front();
  for (std::size_t b = 0; b < kBatches; ++b) {
    for (std::size_t i = 0; i < kPerBatch; ++i) EXPECT_EQ(reported[b][i], 1) << b << "/" << i;
  }
  EXPECT_EQ(files_under(output).size(), kBatches * kPerBatch);
}

}  // namespace
}  // namespace connector
