// Metrics, exposition, probes and the stats line, without servers.
#include "observability/metrics.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "config/http_address.hpp"
#include "observability/exposition.hpp"
#include "observability/probes.hpp"
#include "observability/stats_reporter.hpp"

using namespace connector;

TEST(metrics_test, histogram_counts_each_value_in_the_first_bucket_that_holds_it_and_is_cumulative) {
  Histogram histogram({0.1, 1, 10});
  for (double value : {0.05, 0.1, 0.5, 5.0, 50.0, -1.0}) histogram.observe(value);
  const auto snapshot = histogram.snapshot();
  EXPECT_EQ(snapshot.cumulative, (std::vector<std::uint64_t>{3, 4, 5, 6}));
  EXPECT_NEAR(snapshot.sum, 0.05 + 0.1 + 0.5 + 5 + 50, 1e-6);
}

TEST(metrics_test, counters_and_histograms_add_up_across_threads) {
  Counter counter;
  Histogram histogram({1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        counter.inc();
        histogram.observe(0.5);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counter.value(), 40000u);
  EXPECT_EQ(histogram.snapshot().cumulative.back(), 40000u);
}

TEST(metrics_test, every_cause_has_one_dead_letter_label_and_one_retry_label) {
  struct Expected {
    Cause cause;
    std::string_view dead_letter;
    std::string_view retry;
  };
  const Expected table[] = {
      {Cause::None, "rejected", "rejected"},
      {Cause::ServerBusy, "rejected", "busy"},
      {Cause::Timeout, "rejected", "timeout"},
      {Cause::Connection, "rejected", "connection"},
      {Cause::Rejected, "rejected", "rejected"},
      {Cause::TooLarge, "too_large", "rejected"},
      {Cause::Unencodable, "unencodable", "rejected"},
      {Cause::MaxDeliveries, "max_deliveries", "rejected"},
      {Cause::Io, "rejected", "rejected"},
  };
  for (const auto& expected : table) {
    EXPECT_EQ(label(dead_letter_reason(expected.cause)), expected.dead_letter)
        << static_cast<int>(expected.cause);
    EXPECT_EQ(label(retry_cause(expected.cause)), expected.retry) << static_cast<int>(expected.cause);
  }
}

TEST(metrics_test, the_counters_count_by_cause) {
  Metrics m;
  m.dead_lettered(Cause::TooLarge).inc();
  m.retried(Cause::Timeout).inc(2);
  EXPECT_EQ(m.dead_lettered_by_reason[static_cast<std::size_t>(DeadLetterReason::TooLarge)].value(), 1u);
  EXPECT_EQ(m.retried_by_cause[static_cast<std::size_t>(RetryCause::Timeout)].value(), 2u);
  EXPECT_EQ(m.dead_lettered_total(), 1u);
  EXPECT_EQ(m.retried_total(), 2u);
}

TEST(metrics_test, entry_ids_give_their_millisecond_time) {
  EXPECT_EQ(entry_id_millis("1732700000000-5"), 1732700000000);
  EXPECT_EQ(entry_id_millis("1732700000000"), 1732700000000);
  EXPECT_EQ(entry_id_millis("abc-1"), 0);
  EXPECT_EQ(entry_id_millis(""), 0);
}

TEST(metrics_test, latency_is_measured_from_the_entry_id_and_implausible_ids_are_skipped) {
  Metrics m;
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::vector<std::string> ids = {std::to_string(now_ms - 2000) + "-0", "0-1",
                                        std::to_string(now_ms + 3600000) + "-0"};
  const std::vector<std::string_view> views(ids.begin(), ids.end());
  m.observe_acked(views);
  const auto snapshot = m.end_to_end_latency.snapshot();
  EXPECT_EQ(snapshot.cumulative.back(), 1u);
  EXPECT_GE(snapshot.sum, 2.0);
  EXPECT_LT(snapshot.sum, 60.0);
}

TEST(metrics_test, exposition_omits_an_unknown_lag_and_says_so) {
  Metrics m;
  Metrics output;
  m.entries_acked.inc(7);
  m.dead_lettered(Cause::Rejected).inc();
  LiveState live;
  live.streams.push_back({.key = "s", .metrics = &m, .events_in_flight = 2, .group = {}});
  live.streams[0].group =
      GroupStatus{.polled = true, .redis_up = true, .group_exists = true, .lag = std::nullopt, .pending = 3};
  std::string text = render_exposition(live, output, ProcessStats{}, 0);
  EXPECT_NE(text.find("connector_entries_acked_total{stream=\"s\"} 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("connector_entries_dead_lettered_total{stream=\"s\",reason=\"rejected\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("connector_consumer_group_lag_known{stream=\"s\"} 0\n"), std::string::npos);
  EXPECT_EQ(text.find("\nconnector_consumer_group_lag{"), std::string::npos) << text;
  EXPECT_NE(text.find("connector_consumer_group_pending{stream=\"s\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("connector_events_in_flight{stream=\"s\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("connector_batch_duration_seconds_bucket{stream=\"s\",le=\"+Inf\"} 0\n"), std::string::npos);
  EXPECT_EQ(text.find("connector_eventhubs_token_expires_in_seconds"), std::string::npos);

  live.streams[0].group.lag = 0;
  live.token_metric = true;
  output.set_token_expiry(std::chrono::system_clock::time_point(std::chrono::seconds(1000)));
  output.retried(Cause::Connection).inc(4);
  text = render_exposition(live, output, ProcessStats{}, 400);
  EXPECT_NE(text.find("connector_consumer_group_lag{stream=\"s\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("connector_eventhubs_token_expires_in_seconds 600\n"), std::string::npos) << text;
  EXPECT_NE(text.find("connector_output_events_resent_total{cause=\"connection\"} 4\n"), std::string::npos) << text;
}

TEST(metrics_test, every_stream_has_its_own_samples_and_the_probes_name_the_stream_that_fails) {
  Metrics a, b;
  a.entries_read.inc(3);
  b.entries_read.inc(5);
  const GroupStatus up{.polled = true, .redis_up = true, .group_exists = true, .lag = 1};
  LiveState live;
  live.output_up = true;
  live.streams.push_back({.key = "a", .metrics = &a, .events_in_flight = 0, .group = up});
  live.streams.push_back({.key = "b\"q", .metrics = &b, .events_in_flight = 0, .group = up});
  const std::string text = render_exposition(live, Metrics{}, ProcessStats{}, 0);
  EXPECT_NE(text.find("connector_entries_read_total{stream=\"a\"} 3\nconnector_entries_read_total{stream=\"b\\\"q\"} 5\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("# TYPE connector_entries_read_total counter"),
            text.rfind("# TYPE connector_entries_read_total counter"))
      << "one family, many samples";
  EXPECT_TRUE(check_readiness(live.streams, true).ok);
  live.streams[1].group = GroupStatus{.polled = true, .error = "Connection refused"};
  EXPECT_EQ(check_readiness(live.streams, false).reason,
            "stream 'b\"q': Redis unreachable: Connection refused; output not connected or not authorised");
  a.reader_heartbeat.beat();
  const ProbeResult stuck = check_liveness(live.streams, std::chrono::seconds(1), a.reader_heartbeat.last_ms() + 5000);
  EXPECT_NE(stuck.reason.find("stream 'a': the reader thread made no progress"), std::string::npos) << stuck.reason;
}

TEST(metrics_test, a_silent_thread_fails_liveness_and_a_parked_one_does_not) {
  Heartbeat reader, acker;
  EXPECT_TRUE(check_liveness(reader, acker, std::chrono::seconds(10), 1'000'000'000).ok) << "not started yet";
  reader.beat();
  acker.park();
  const std::int64_t later = reader.last_ms() + 11'000;
  const ProbeResult result = check_liveness(reader, acker, std::chrono::seconds(10), later);
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.reason.find("reader thread made no progress"), std::string::npos) << result.reason;
  EXPECT_EQ(result.reason.find("acker"), std::string::npos) << result.reason;
  EXPECT_TRUE(check_liveness(reader, acker, std::chrono::seconds(10), reader.last_ms() + 9'000).ok);
  EXPECT_EQ(probe_body(result).substr(0, 26), "{\"reason\":\"the reader thre");
}

TEST(metrics_test, readiness_needs_redis_the_group_and_the_output) {
  GroupStatus up{.polled = true, .redis_up = true, .group_exists = true};
  EXPECT_TRUE(check_readiness(up, true).ok);
  EXPECT_EQ(probe_body(check_readiness(up, true)), "{\"status\":\"ok\"}\n");
  EXPECT_NE(check_readiness(up, false).reason.find("output"), std::string::npos);
  GroupStatus down{.polled = true, .error = "Connection refused"};
  EXPECT_NE(check_readiness(down, true).reason.find("Redis unreachable: Connection refused"),
            std::string::npos);
  GroupStatus no_group{.polled = true, .redis_up = true, .error = "consumer group 'g' does not exist"};
  EXPECT_EQ(check_readiness(no_group, true).reason, "consumer group 'g' does not exist");
  EXPECT_FALSE(check_readiness(GroupStatus{}, true).ok);
}

TEST(metrics_test, stats_line_gives_deltas_and_rates_rounded_to_two_decimals) {
  StatsTotals before{.read = 10, .acked = 10};
  StatsTotals after{.read = 110, .acked = 40, .dead_lettered = 1};
  StreamLive stream;
  stream.key = "s";
  stream.events_in_flight = 5;
  stream.group = GroupStatus{.polled = true, .redis_up = true, .group_exists = true, .lag = 12, .pending = 4};
  const auto fields = stats_fields(before, after, 3.0, stream, true);
  EXPECT_EQ(fields["stream"], "s");
  EXPECT_EQ(fields["read"], 100);
  EXPECT_EQ(fields["read_per_s"], 33.33);
  EXPECT_EQ(fields["acked_per_s"], 10.0);
  EXPECT_EQ(fields["dead_lettered"], 1);
  EXPECT_EQ(fields["lag"], 12);
  EXPECT_EQ(fields["pending"], 4);
  EXPECT_EQ(fields["in_flight"], 5);
  EXPECT_EQ(fields["output"], "up");
  stream.group.lag.reset();
  EXPECT_TRUE(stats_fields(before, after, 3.0, stream, true)["lag"].is_null());
}

TEST(http_address_test, accepts_host_port_ipv6_and_off) {
  EXPECT_FALSE(parse_http_address("off").has_value());
  EXPECT_FALSE(parse_http_address("OFF").has_value());
  auto address = parse_http_address("0.0.0.0:9464");
  ASSERT_TRUE(address);
  EXPECT_EQ(address->host, "0.0.0.0");
  EXPECT_EQ(address->port, 9464);
  address = parse_http_address("[::1]:8080");
  ASSERT_TRUE(address);
  EXPECT_EQ(address->host, "::1");
  EXPECT_EQ(address->describe(), "[::1]:8080");
  EXPECT_EQ(parse_http_address("localhost:1")->host, "localhost");
}

TEST(http_address_test, rejects_what_cannot_be_bound_with_a_reason) {
  const auto reason = [](std::string_view text) {
    try {
      parse_http_address(text);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(reason("9464").find("has no port"), std::string::npos);
  EXPECT_NE(reason("0.0.0.0:").find("the port \"\" is not a whole number from 1 to 65535"),
            std::string::npos);
  EXPECT_NE(reason("0.0.0.0:70000").find("the port \"70000\" is not"), std::string::npos);
  EXPECT_NE(reason("0.0.0.0:http").find("the port \"http\" is not"), std::string::npos);
  EXPECT_NE(reason("::1:9464").find("without [ ]"), std::string::npos);
  EXPECT_NE(reason("[::1:9464").find("IPv6 address has no closing ']'"), std::string::npos);
  EXPECT_NE(reason("[nope]:9464").find("IPv6"), std::string::npos);
  EXPECT_NE(reason("300.1.1.1:9464").find("no valid host"), std::string::npos);
  EXPECT_NE(reason(":9464").find("no valid host"), std::string::npos);
  EXPECT_NE(reason("a b:9464").find("use host:port"), std::string::npos);
}
