#pragma once
// LOCAL_FILE output (DESIGN.md "Event mapping", last point).
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "sinks/sink.hpp"

namespace connector {

struct LocalFileSinkOptions {
  std::filesystem::path directory = "./output";
  bool fsync = true;         // durable before the completion (one syncfs per batch)
  std::string stream_key;    // written into each file
};

/// Writes one JSON file per event, `<directory>/<entry-id>.json`, atomically (temporary file, then
/// rename), so a redelivery overwrites instead of duplicating. A writer thread of its own takes
/// batches in order; with fsync on, a batch is confirmed only after one syncfs() made it durable.
class LocalFileSink final : public Sink {
 public:
  explicit LocalFileSink(LocalFileSinkOptions options);
  ~LocalFileSink() override;

  /// Creates the directory and checks that it is writable; throws ConnectorError otherwise.
  void start() override;
  void send(Batch batch, CompletionCallback done) override;
  void stop(std::chrono::milliseconds grace) override;
  std::size_t max_event_bytes() const override;
  bool ready() const override { return running_.load(); }

 private:
  struct Job {
    Batch batch;
    CompletionCallback done;
  };
  void run();
  std::vector<Completion> write_batch(const Batch& batch);

  LocalFileSinkOptions options_;
  int directory_fd_ = -1;
  std::atomic<bool> running_{false};
  std::thread writer_;          // owns the files; the only thread calling `done`
  std::mutex mutex_;            // guards jobs_, stopping_, busy_
  std::condition_variable changed_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  bool busy_ = false;           // the writer holds a job outside the queue
  std::string buffer_;          // writer thread only: reused for every file
};

/// The file content for one event: {"id","stream","partitionKey","properties","contentType",
/// "bodyEncoding":"json"|"utf8"|"base64","body"}. Appends to `out`.
void render_event_file(std::string& out, const Event& event, std::string_view stream_key);

}  // namespace connector
