#pragma once
// LOCAL_FILE output: one JSON file per entry, complete before it appears, durable before the ack.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "sinks/output_directory.hpp"
#include "sinks/sink.hpp"
#include "sinks/spent_batches.hpp"

namespace connector {

struct LocalFileSinkOptions {
  std::filesystem::path directory;
  bool fsync = false;      // durable before the completion (syncfs)
  std::string stream_key;  // written into each file
  OutputLayout layout{};
  std::size_t writers = 0;  // threads writing files; 0 is taken as 1
};

/// How a complete file gets its name: an unnamed O_TMPFILE file linked in (linkat with AT_EMPTY_PATH,
/// or through /proc/self/fd where that needs a capability the process lacks), or a temporary name
/// renamed (file systems without O_TMPFILE, and redeliveries, which must replace the file).
enum class FileNaming { LinkEmptyPath, LinkProcFd, Rename };

/// The cheapest FileNaming that works in `directory` (tried once, with a file it removes again).
FileNaming probe_file_naming(int directory);

/// Writes one JSON file per event, `<directory>/<entry-id>.json` (or `<directory>/YYYY/MM/DD/HH/…`),
/// atomically (an unnamed file linked in once complete, or a temporary file renamed), so no reader sees
/// a partial file and a redelivery overwrites instead of duplicating.
/// A pool of writer threads shares each batch; a batch is reported once all its files are written
/// and, with fsync on, after a syncfs() that started after the last of them (one syncfs covers every
/// batch written meanwhile).
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
  Batch spare_batch() override { return spent_.take(); }

 private:
  struct Job;
  /// Entries [begin, end) of one job, for one writer.
  struct Slice {
    std::shared_ptr<Job> job;
    std::size_t begin = 0;
    std::size_t end = 0;
  };
  class Writer;
  void run_writer(std::size_t index);
  void run_syncer();
  void written(const std::shared_ptr<Job>& job);
  /// Reports the job; `sync_error` (with its `sync_cause`) fails every event the syncfs was to make durable.
  void finish(Job& job, const std::string& sync_error, Cause sync_cause);

  LocalFileSinkOptions options_;
  SpentBatches spent_;  // reported batches, for the pipeline to encode the next ones into
  OutputDirectory directory_;
  FileNaming naming_ = FileNaming::Rename;
  std::atomic<bool> running_{false};
  std::vector<std::thread> writers_;  // write files; report batches when fsync is off
  std::thread syncer_;                // fsync on: syncfs() for written batches, then reports them
  std::mutex mutex_;                  // guards everything below
  std::condition_variable work_;      // slices_ gained one, or stopping_
  std::condition_variable synced_;    // unsynced_ gained one, or stopping_
  std::condition_variable idle_;      // nothing queued and nothing busy
  std::deque<Slice> slices_;
  std::vector<std::shared_ptr<Job>> unsynced_;
  std::size_t busy_ = 0;  // slices being written plus batches being synced
  bool stopping_ = false;
};

/// The file content for one event: {"id","stream","partitionKey","properties","contentType",
/// "bodyEncoding":"json"|"utf8"|"base64","body"}. Appends to `out`.
void render_event_file(std::string& out, const Event& event, std::string_view stream_key);

}  // namespace connector
