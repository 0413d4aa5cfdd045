#pragma once
// The fault-injection harness: publishes a known sequence while connectors are killed and Redis restarts,
// then checks from what the output recorded that nothing was lost.
#include <atomic>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/connector_process.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"

namespace connector::testing {

/// Where a chaos run's stream lives and the Redis fault it suffers: one redis-server, restarted; or a Redis
/// Cluster, whose primary of the stream is SIGKILLed, its replica promoted and the old node brought back
/// as a replica. Cheap to copy (the publisher keeps one); thread-safe, so the publisher can reconnect
/// while a failover runs (it waits for its end).
class ChaosRedis {
 public:
  ChaosRedis(RedisServer& server);  // NOLINT(google-explicit-constructor): the one-server suites pass theirs as is
  ChaosRedis(RedisCluster& cluster, std::string stream_key);

  /// A connection to the node that holds the stream now.
  RedisConnectionOptions connection_options() const { return options_(); }
  /// A command on that node.
  RedisReply command(const std::vector<std::string_view>& argv) const { return command_(argv); }
  /// The Redis fault of the run.
  void fail() const { fail_(); }

 private:
  std::function<RedisConnectionOptions()> options_;
  std::function<RedisReply(const std::vector<std::string_view>&)> command_;
  std::function<void()> fail_;
};

/// How big and how long a chaos run is; CI uses the defaults, scripts/soak.sh scales them up.
struct ChaosScale {
  std::size_t entries = 20000;
  double publish_rate = 1000;  // entries per second
  int min_kills = 10;
  int min_redis_restarts = 2;
  std::chrono::seconds min_duration{0};  // a soak keeps publishing and killing at least this long
  unsigned seed = 0;                     // of every random choice of the run; printed

  /// CHAOS_ENTRIES, CHAOS_RATE, CHAOS_KILLS, CHAOS_REDIS_RESTARTS, CHAOS_DURATION_S override the defaults;
  /// CHAOS_SEED=n repeats a run's random choices (else the seed is random). Prints the seed.
  static ChaosScale from_environment();
};

/// What the run did and what the check found.
struct ChaosReport {
  std::size_t published = 0;       // entries in the stream at the end
  std::size_t delivered = 0;       // distinct entries the output has
  std::size_t dead_lettered = 0;   // distinct entries in the dead-letter stream (each with a reason)
  std::size_t duplicates = 0;      // deliveries beyond the first (visible for Event Hubs only)
  std::size_t missing = 0;         // neither delivered nor dead-lettered: loss
  long long still_pending = -1;
  int kills = 0;
  int redis_restarts = 0;
  int output_faults = 0;
  unsigned seed = 0;
  std::vector<std::string> missing_examples;
  std::string summary() const;
};

/// Publishes entries of several kinds (plain, binary, empty values, long names, a few very large ones).
class ChaosPublisher {
 public:
  ChaosPublisher(ChaosRedis redis, std::string stream, ChaosScale scale, std::size_t oversized_bytes);
  ~ChaosPublisher();
  void start();
  void join();
  bool done() const { return done_; }
  std::size_t written() const { return written_; }

 private:
  void run();
  ChaosRedis redis_;
  std::string stream_;
  ChaosScale scale_;
  std::size_t oversized_bytes_;
  std::atomic<bool> done_{false};
  std::atomic<std::size_t> written_{0};
  std::thread thread_;
};

/// Connector processes of one group by consumer name, started with the same settings.
class ChaosInstances {
 public:
  ChaosInstances(std::map<std::string, std::string> settings, std::filesystem::path log_dir,
                 const std::vector<std::string>& names);
  /// SIGKILL, a random pause of up to 300 ms, then the same name again (it re-reads its own pending).
  void kill_and_restart(const std::string& name, std::minstd_rand& random);
  /// SIGKILL, never restarted: the others must claim its pending entries.
  void kill_for_good(const std::string& name);
  /// SIGKILL now; start(name) brings the same name back later.
  void kill(const std::string& name);
  void start(const std::string& name);
  /// Waits until every live instance logged connector_started.
  bool wait_started();
  /// Every instance's log so far, concatenated (for checks on what was logged).
  std::string logs() const;
  /// Waits until each live instance is up, then stops it with SIGINT; expects exit status 0.
  void stop_all();

 private:
  std::map<std::string, std::string> settings_;
  std::filesystem::path log_dir_;
  std::map<std::string, std::unique_ptr<ConnectorProcess>> live_;
};

/// Publishes the whole scale while killing and restarting `restartable` instances at random, killing
/// `doomed` for good halfway, restarting Redis now and then, and calling `output_fault` (when given)
/// in about one step of five. Returns when the publisher is done and every minimum of `scale` is met.
void run_chaos(const ChaosRedis& redis, ChaosPublisher& publisher, ChaosInstances& instances,
               const std::vector<std::string>& restartable, const std::string& doomed, const ChaosScale& scale,
               ChaosReport& report, const std::function<void()>& output_fault = {});

/// Fills `report` from the stream's IDs: `deliveries(id)` says how often the output has the entry; an
/// entry neither delivered nor in the dead-letter stream is missing. Returns the dead-letter reasons.
std::map<std::string, std::string> check_deliveries(const ChaosRedis& redis, const std::string& stream,
                                                    const std::string& group,
                                                    const std::function<std::size_t(const std::string&)>& deliveries,
                                                    ChaosReport& report);

/// Every ID of the stream, read in pages with XRANGE.
std::vector<std::string> all_stream_ids(const ChaosRedis& redis, const std::string& stream);
/// original ID → reason, from the dead-letter stream.
std::map<std::string, std::string> dead_lettered(const ChaosRedis& redis, const std::string& dead_letter_stream);
long long pending_entries(const ChaosRedis& redis, const std::string& stream, const std::string& group);
/// Waits until the group has no pending entries and has been delivered the stream's last entry, or `timeout`.
bool wait_drained(const ChaosRedis& redis, const std::string& stream, const std::string& group,
                  std::chrono::milliseconds timeout);

}  // namespace connector::testing
