#include "eventhubs/eventhubs_sink.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <mutex>
#include <utility>
#include <vector>

#include "common/errors.hpp"
#include "eventhubs/eventhubs_connection.hpp"
#include "observability/logger.hpp"

namespace connector {

namespace {

// start() waits this much longer than connect_timeout: the loop thread gives up by itself first,
// so this only covers a loop thread that is stuck.
constexpr std::chrono::milliseconds kStartWaitMargin{10000};

}  // namespace

AmqpPathOptions amqp_path_options(const EventHubsSinkOptions& options) {
  AmqpPathOptions path;
  if (options.websocket) {
    path = *options.websocket;
  } else {
    path.host = options.connection.host;
    path.port = options.connection.port;
    path.tls = !options.connection.use_development_emulator;
    path.ca_file = options.ca_file;
  }
  path.setup_timeout = options.connect_timeout;
  path.stamp_batches = options.batching;
  return path;
}

/// The thread-crossing part of the sink: hands batches to the loop thread, waits for start, stops.
class EventHubsSink::Impl {
 public:
  explicit Impl(EventHubsSinkOptions options) : connection_(std::move(options), &spent_) {}

  void start();
  void send(Batch batch, CompletionCallback done);
  void stop(std::chrono::milliseconds grace);
  std::size_t max_event_bytes() const { return connection_.max_message_size(); }
  bool ready() const { return connection_.ready(); }
  Batch spare_batch() { return spent_.take(); }

 private:
  enum class Lifecycle { Created, Starting, Running, Stopped };

  void drain_inbox();  // loop thread

  SpentBatches spent_;  // before connection_: its tracker gives batches back until it is gone
  EventHubsConnection connection_;
  std::mutex mutex_;  // guards everything below
  Lifecycle lifecycle_ = Lifecycle::Created;
  EventHubsConnection::PendingBatches inbox_;  // sent, not yet taken by the loop thread
  bool wake_pending_ = false;                  // a drain_inbox() is posted and has not run yet
};

void EventHubsSink::Impl::start() {
  {
    std::lock_guard lock(mutex_);
    if (lifecycle_ != Lifecycle::Created) throw EventHubsError("the Event Hubs sink was already started");
    lifecycle_ = Lifecycle::Starting;
  }
  logger().info("eventhubs_connecting", connection_.where());
  auto result = std::make_shared<std::promise<std::optional<std::string>>>();
  std::future<std::optional<std::string>> started = result->get_future();
  connection_.run([result](std::optional<std::string> error) { result->set_value(std::move(error)); });
  const EventHubsSinkOptions& options = connection_.options();
  std::optional<std::string> error =
      started.wait_for(options.connect_timeout + kStartWaitMargin) == std::future_status::ready
          ? started.get()
          : fmt::format("no answer from {} in time; check the network path to the endpoint",
                        connection_.describe());
  std::unique_lock lock(mutex_);
  if (!error) {
    if (lifecycle_ == Lifecycle::Starting) {
      lifecycle_ = Lifecycle::Running;
      return;
    }
    error = "the Event Hubs sink was stopped while it started";  // stop() ran meanwhile and joined
  }
  // Whoever moves the lifecycle to Stopped joins the loop thread: stop() may have done so already.
  const bool join_here = lifecycle_ != Lifecycle::Stopped;
  lifecycle_ = Lifecycle::Stopped;
  lock.unlock();
  if (join_here) {
    connection_.post([this] { connection_.abort(); });
    connection_.join();
  }
  throw EventHubsError(*error);
}

void EventHubsSink::Impl::send(Batch batch, CompletionCallback done) {
  if (batch.empty()) return;
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (lifecycle_ != Lifecycle::Running) {
      // Reporting now would be a completion after (or racing with) stop(); unreported events stay
      // pending in Redis and come back, which is what stop() promises for unconfirmed work anyway.
      logger().warn("eventhubs_send_while_stopped", {{"events", batch.size()}});
      return;
    }
    inbox_.emplace_back(std::move(batch), std::move(done));
    wake = !wake_pending_;
    wake_pending_ = true;
  }
  if (wake) connection_.post([this] { drain_inbox(); });
}

void EventHubsSink::Impl::drain_inbox() {
  EventHubsConnection::PendingBatches batches;
  {
    std::lock_guard lock(mutex_);
    batches.swap(inbox_);
    wake_pending_ = false;
  }
  connection_.add(std::move(batches));
}

void EventHubsSink::Impl::stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mutex_);
    if (lifecycle_ == Lifecycle::Created || lifecycle_ == Lifecycle::Stopped) return;
    lifecycle_ = Lifecycle::Stopped;
    inbox_.clear();  // never sent: stays pending in Redis
  }
  connection_.post([this, grace] { connection_.stop(grace); });
  connection_.join();
}

// ============================================================ the public face

EventHubsSink::EventHubsSink(EventHubsSinkOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
EventHubsSink::~EventHubsSink() { impl_->stop(std::chrono::milliseconds(0)); }
void EventHubsSink::start() { impl_->start(); }
void EventHubsSink::send(Batch batch, CompletionCallback done) {
  impl_->send(std::move(batch), std::move(done));
}
void EventHubsSink::stop(std::chrono::milliseconds grace) { impl_->stop(grace); }
std::size_t EventHubsSink::max_event_bytes() const { return impl_->max_event_bytes(); }
bool EventHubsSink::ready() const { return impl_->ready(); }
Batch EventHubsSink::spare_batch() { return impl_->spare_batch(); }

}  // namespace connector
