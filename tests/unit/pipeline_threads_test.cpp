// The Pipeline's threads and stop protocol over an in-memory StreamSource: no redis-server.
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/errors.hpp"
#include "core/pipeline.hpp"
#include "support/child_process.hpp"
#include "support/controllable_sink.hpp"
#include "support/pipeline_options.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using testing::ControllableSink;
using testing::wait_until;

/// A stream with one group, shared by the reader's and the acker's sources: what is appended is read
/// once with ">", what is acked or dead-lettered is remembered. Failures are injected per command.
struct FakeStream {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<StreamEntry> unread;
  std::set<std::string> delivered;  // read and neither acked nor dead-lettered
  std::vector<std::string> acked;
  std::vector<std::pair<std::string, std::string>> dead_letters;  // id, reason
  int ack_failures = 0;     // the next acks that fail with a lost connection
  bool hold_reads = false;  // a read with entries waits until this is false again
  int reads_held = 0;       // reads waiting for hold_reads
  int connects = 0;
  bool refuse_connect = false;
  int next_id = 1;

  void append(int count) {
    std::lock_guard lock(mutex);
    for (int i = 0; i < count; ++i) {
      StreamEntry entry;
      entry.id = std::to_string(next_id++) + "-0";
      entry.fields = {{"n", std::to_string(i)}};
      unread.push_back(std::move(entry));
    }
    changed.notify_all();
  }
  template <class T>
  T locked(const std::function<T()>& read) {
    std::lock_guard lock(mutex);
    return read();
  }
  std::size_t acked_count() {
    return locked<std::size_t>([&] { return acked.size(); });
  }
  std::size_t pending() {
    return locked<std::size_t>([&] { return delivered.size(); });
  }
};

StreamConsumerOptions stream_options() {
  StreamConsumerOptions options;
  options.stream_key = "s";
  options.group = "g";
  options.consumer = "me";
  options.dead_letter_stream = "s:dead-letter";
  return options;
}

/// One connection to the FakeStream. interrupt() ends a waiting read like a closed socket does.
class FakeSource final : public StreamSource {
 public:
  explicit FakeSource(FakeStream& stream) : stream_(stream), options_(stream_options()) {}

  void connect() override {
    std::lock_guard lock(stream_.mutex);
    if (stream_.refuse_connect) throw RedisConnectionError("connection refused");
    ++stream_.connects;
    connected_ = true;
    interrupted_ = false;
  }
  bool connected() const override { return connected_; }
  void close() override { connected_ = false; }
  void interrupt() override {
    std::lock_guard lock(stream_.mutex);
    interrupted_ = true;
    stream_.changed.notify_all();
  }
  std::string describe_endpoint() const override { return "fake:0"; }
  RedisVersion check_server() override { return {7, 0, 0}; }
  bool ensure_group(std::string_view) override { return false; }
  const StreamConsumerOptions& options() const noexcept override { return options_; }

  std::vector<StreamEntry> read(std::string_view, std::size_t count,
                                std::optional<std::chrono::milliseconds> block,
                                const std::function<bool()>&) override {
    std::unique_lock lock(stream_.mutex);
    const auto deadline = std::chrono::steady_clock::now() + block.value_or(0ms);
    while (stream_.unread.empty() && !interrupted_) {
      if (stream_.changed.wait_until(lock, deadline) == std::cv_status::timeout) return {};
    }
    ++stream_.reads_held;
    stream_.changed.notify_all();
    stream_.changed.wait(lock, [&] { return !stream_.hold_reads || interrupted_; });
    --stream_.reads_held;
    if (interrupted_) {
      connected_ = false;
      throw RedisConnectionError("interrupted");
    }
    std::vector<StreamEntry> entries;
    while (!stream_.unread.empty() && entries.size() < count) {
      stream_.delivered.insert(stream_.unread.front().id);
      entries.push_back(std::move(stream_.unread.front()));
      stream_.unread.pop_front();
    }
    return entries;
  }
  bool read_ahead_outstanding() const noexcept override { return false; }
  std::vector<StreamEntry> take_delivered_read_ahead(std::size_t) override { return {}; }
  std::vector<StreamEntry> read_own_pending(std::string_view, std::size_t) override { return {}; }

  long long ack(const std::vector<std::string_view>& ids) override {
    std::lock_guard lock(stream_.mutex);
    if (stream_.ack_failures > 0) {
      --stream_.ack_failures;
      connected_ = false;
      throw RedisConnectionError("connection reset by peer");
    }
    for (const auto& id : ids) {
      stream_.acked.emplace_back(id);
      stream_.delivered.erase(std::string(id));
    }
    return static_cast<long long>(ids.size());
  }
  std::vector<std::string> dead_letter(const std::vector<DeadLetter>& entries) override {
    std::lock_guard lock(stream_.mutex);
    for (const auto& letter : entries) {
      stream_.dead_letters.emplace_back(letter.entry->id, letter.reason);
      stream_.delivered.erase(letter.entry->id);
    }
    return std::vector<std::string>(entries.size());
  }
  ClaimResult claim(std::chrono::milliseconds, std::string_view, std::size_t,
                    const std::function<bool(std::string_view)>&) override {
    return {};
  }
  void set_delivery_counts(const std::vector<std::pair<std::string, unsigned>>&) override {}

 private:
  FakeStream& stream_;
  StreamConsumerOptions options_;
  bool connected_ = false;    // this source's thread only
  bool interrupted_ = false;  // stream_.mutex
};

// The in-memory stream answers at once, so the waits can be shorter than against a redis-server; claims
// are kept out of the way (the fake source has nothing to claim).
PipelineOptions fast_options() {
  return testing::fast_pipeline_options({.poll_timeout = 50ms,
                                         .retry_delay = 5ms,
                                         .max_retry_delay = 20ms,
                                         .shutdown_grace = 5s,
                                         .claim_interval = 10s,
                                         .claim_min_idle = 10s});
}

std::optional<Outcome> accept(const Event&) { return Outcome::Accepted; }

class pipeline_threads_test : public ::testing::Test {
 protected:
  FakeStream stream;
  FakeSource reader{stream};
  FakeSource acker{stream};
  Metrics metrics;
  std::unique_ptr<Pipeline> make(Sink& sink, PipelineOptions options = fast_options()) {
    return std::make_unique<Pipeline>(options, reader, acker, Encoder({"s", std::nullopt, std::nullopt}),
                                      sink, metrics);
  }
};

TEST_F(pipeline_threads_test, acks_only_what_the_output_confirmed) {
  stream.append(10);
  ControllableSink sink;  // holds everything
  auto pipeline = make(sink);
  pipeline->start();
  ASSERT_TRUE(sink.wait_for_sent(10, 10s));
  EXPECT_EQ(stream.acked_count(), 0u);
  EXPECT_EQ(sink.complete_held(Outcome::Accepted), 10u);
  ASSERT_TRUE(wait_until([&] { return stream.acked_count() == 10; }, 10s));
  pipeline->stop();
  EXPECT_EQ(pipeline->stats().acked, 10u);
  EXPECT_EQ(pipeline->stats().read, 10u);
  EXPECT_EQ(stream.pending(), 0u);
}

TEST_F(pipeline_threads_test, retries_go_to_the_output_again_and_rejects_to_the_dead_letter_stream) {
  stream.append(4);
  std::mutex mutex;
  std::map<std::string, int> attempts;
  ControllableSink sink([&](const Event& event) -> std::optional<Outcome> {
    std::lock_guard lock(mutex);
    if (event.entry_id == "3-0") return Outcome::Reject;
    return ++attempts[event.entry_id] < 3 ? Outcome::Retry : Outcome::Accepted;
  });
  auto pipeline = make(sink);
  pipeline->start();
  ASSERT_TRUE(wait_until([&] { return stream.pending() == 0 && stream.acked_count() == 3; }, 10s));
  pipeline->stop();
  EXPECT_EQ(pipeline->stats().retried, 6u);
  EXPECT_EQ(pipeline->stats().dead_lettered, 1u);
  std::lock_guard lock(stream.mutex);
  EXPECT_EQ(stream.dead_letters, (std::vector<std::pair<std::string, std::string>>{{"3-0", "policy"}}));
}

TEST_F(pipeline_threads_test, confirmations_are_kept_while_the_acker_connection_is_lost_and_acked_after) {
  stream.append(10);
  stream.ack_failures = 3;
  ControllableSink sink(accept);
  auto pipeline = make(sink);
  pipeline->start();
  ASSERT_TRUE(wait_until([&] { return stream.acked_count() == 10; }, 10s));
  pipeline->stop();
  EXPECT_EQ(pipeline->stats().redis_reconnects, 3u);
  EXPECT_EQ(stream.pending(), 0u);
}

TEST_F(pipeline_threads_test, reading_stops_at_max_in_flight_batches_and_resumes) {
  stream.append(50);
  ControllableSink sink;
  auto options = fast_options();
  options.max_in_flight_batches = 2;
  auto pipeline = make(sink, options);
  pipeline->start();
  ASSERT_TRUE(sink.wait_for_sent(20, 10s));
  // The reader parks only when it waits for capacity.
  ASSERT_TRUE(wait_until([&] { return metrics.reader_heartbeat.parked(); }, 10s));
  EXPECT_EQ(pipeline->stats().read, 20u);
  EXPECT_EQ(pipeline->stats().in_flight_batches, 2u);
  sink.set_policy(accept);
  sink.complete_held(Outcome::Accepted);
  ASSERT_TRUE(wait_until([&] { return stream.acked_count() == 50; }, 10s));
  pipeline->stop();
}

TEST_F(pipeline_threads_test, stop_leaves_what_the_output_did_not_confirm_pending) {
  stream.append(10);
  ControllableSink sink;
  auto options = fast_options();
  options.shutdown_grace = 100ms;
  auto pipeline = make(sink, options);
  pipeline->start();
  ASSERT_TRUE(sink.wait_for_sent(10, 10s));
  pipeline->stop();
  EXPECT_FALSE(pipeline->running());
  EXPECT_EQ(stream.pending(), 10u);
  EXPECT_EQ(stream.acked_count(), 0u);
}

// stop() lets a read that is being answered finish, and the batch it brings is sent and acked.
TEST_F(pipeline_threads_test, a_stop_while_a_read_is_answered_hands_its_batch_on) {
  ControllableSink sink(accept);
  auto pipeline = make(sink);
  pipeline->start();
  {
    std::lock_guard lock(stream.mutex);
    stream.hold_reads = true;
  }
  stream.append(5);
  ASSERT_TRUE(wait_until([&] { return stream.locked<int>([&] { return stream.reads_held; }) == 1; }, 10s));
  std::thread stopper([&] { pipeline->stop(); });
  ASSERT_TRUE(wait_until([&] { return !pipeline->running(); }, 10s));
  {
    std::lock_guard lock(stream.mutex);
    stream.hold_reads = false;
    stream.changed.notify_all();
  }
  stopper.join();
  EXPECT_EQ(stream.acked_count(), 5u);
  EXPECT_EQ(stream.pending(), 0u);
}

TEST_F(pipeline_threads_test, a_failed_start_leaves_nothing_running) {
  stream.refuse_connect = true;
  ControllableSink sink;
  auto options = fast_options();
  options.startup_connect_attempts = 2;
  auto pipeline = make(sink, options);
  EXPECT_THROW(pipeline->start(), RedisConnectionError);
  EXPECT_FALSE(pipeline->running());
  EXPECT_FALSE(reader.connected());
  EXPECT_FALSE(acker.connected());
}

}  // namespace
}  // namespace connector
