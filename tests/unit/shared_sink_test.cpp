// SharedSink: several pipelines own leases of one output, which starts once and stops after the last.
#include "sinks/shared_sink.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace connector {
namespace {
using std::chrono::milliseconds;

/// Counts what is done to it; start() throws while `fail_start` is set.
class CountingSink final : public Sink {
 public:
  void start() override {
    ++starts;
    if (fail_start) throw std::runtime_error("cannot start");
  }
  void send(Batch batch, CompletionCallback done) override {
    sent += batch.size();
    done({Completion{}});
  }
  void stop(milliseconds grace) override {
    ++stops;
    last_grace = grace;
  }
  std::size_t max_event_bytes() const override { return 123; }
  bool ready() const override { return true; }

  int starts = 0, stops = 0;
  milliseconds last_grace{-1};
  std::size_t sent = 0;
  bool fail_start = false;
};

TEST(shared_sink_test, starts_once_and_stops_with_the_grace_of_the_last_lease_to_stop) {
  CountingSink output;
  SharedSink shared(output, 3);
  auto a = shared.lease(), b = shared.lease(), c = shared.lease();
  a->start();
  b->start();
  c->start();
  EXPECT_EQ(output.starts, 1);
  b->send({Event{}, Event{}}, [](std::vector<Completion>) {});
  EXPECT_EQ(output.sent, 2u);
  EXPECT_EQ(c->max_event_bytes(), 123u);
  a->stop(milliseconds(10));
  c->stop(milliseconds(20));
  c->stop(milliseconds(20));  // a pipeline's stop and the app's safety stop: counted once
  EXPECT_EQ(output.stops, 0) << "b still drains";
  b->stop(milliseconds(30));
  EXPECT_EQ(output.stops, 1);
  EXPECT_EQ(output.last_grace, milliseconds(30));
}

TEST(shared_sink_test, a_lease_never_started_still_lets_the_output_stop) {
  CountingSink output;
  SharedSink shared(output, 2);
  {
    auto started = shared.lease();
    auto never = shared.lease();
    started->start();
    started->stop(milliseconds(5));
    EXPECT_EQ(output.stops, 0);
  }  // `never` is dropped without a stop(): its destructor counts it
  EXPECT_EQ(output.stops, 1);
}

TEST(shared_sink_test, a_failed_start_is_reported_to_the_lease_and_tried_again_by_the_next) {
  CountingSink output;
  output.fail_start = true;
  SharedSink shared(output, 2);
  auto a = shared.lease(), b = shared.lease();
  EXPECT_THROW(a->start(), std::runtime_error);
  output.fail_start = false;
  b->start();
  EXPECT_EQ(output.starts, 2);
  a->stop(milliseconds(0));
  b->stop(milliseconds(0));
  EXPECT_EQ(output.stops, 1);
}

}  // namespace
}  // namespace connector
