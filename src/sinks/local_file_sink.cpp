#include "sinks/local_file_sink.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>

#include "common/errno_text.hpp"
#include "common/errors.hpp"
#include "core/json_writer.hpp"
#include "observability/logger.hpp"

namespace connector {
namespace {
bool write_all(int fd, const std::string& data) {
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t written = ::write(fd, p, left);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += written;
    left -= static_cast<std::size_t>(written);
  }
  return true;
}

// O_TMPFILE is refused with one of these where the file system (or kernel) lacks it.
bool tmpfile_unsupported(int error) { return error == EOPNOTSUPP || error == EISDIR || error == EINVAL; }

// Gives the unnamed file `fd` the name `name` in `directory`, by `method`; 0 or an errno value.
int link_unnamed(FileNaming method, int fd, int directory, const char* name) {
  int result = -1;
  if (method == FileNaming::LinkEmptyPath) {
    result = ::linkat(fd, "", directory, name, AT_EMPTY_PATH);
  } else {
    char self[40];
    fmt::format_to_n(self, sizeof self - 1, "/proc/self/fd/{}", fd).out[0] = '\0';
    result = ::linkat(AT_FDCWD, self, directory, name, AT_SYMLINK_FOLLOW);
  }
  return result == 0 ? 0 : errno;
}
}  // namespace

FileNaming probe_file_naming(int directory) {
  const std::string probe = fmt::format(".connector-probe.{}.tmp", ::getpid());
  for (const FileNaming method : {FileNaming::LinkEmptyPath, FileNaming::LinkProcFd}) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      const int fd = ::openat(directory, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0) return FileNaming::Rename;
      const int error = link_unnamed(method, fd, directory, probe.c_str());
      ::close(fd);
      if (error == 0) {
        ::unlinkat(directory, probe.c_str(), 0);
        return method;
      }
      if (error != EEXIST) break;
      ::unlinkat(directory, probe.c_str(), 0);  // left by a probe that crashed; try again
    }
  }
  return FileNaming::Rename;
}

void render_event_file(std::string& out, const Event& event, std::string_view stream_key) {
  out.append("{\"id\":");
  append_json_string(out, event.entry_id);
  out.append(",\"stream\":");
  append_json_text_or_base64(out, stream_key);
  out.append(",\"partitionKey\":");
  if (event.partition_key.empty()) {
    out.append("null");
  } else {
    append_json_text_or_base64(out, event.partition_key);
  }
  out.append(",\"properties\":{");
  bool first = true;
  for (const auto& [name, value] : event.properties) {
    if (!first) out.push_back(',');
    first = false;
    append_json_key(out, name);
    out.push_back(':');
    append_json_text_or_base64(out, value);
  }
  out.append("},\"contentType\":");
  if (event.content_type.empty()) {
    out.append("null");
  } else {
    append_json_string(out, event.content_type);
  }
  if (event.body_is_json) {
    out.append(",\"bodyEncoding\":\"json\",\"body\":");
    out.append(event.body);
  } else {
    const std::size_t before_body = out.size();
    out.append(",\"bodyEncoding\":\"utf8\",\"body\":");
    if (!append_json_string_if_utf8(out, event.body)) {
      out.resize(before_body);
      out.append(",\"bodyEncoding\":\"base64\",\"body\":\"");
      append_base64(out, event.body);
      out.push_back('"');
    }
  }
  out.append("}\n");
}

/// One batch on its way through the writers (and the syncer).
struct LocalFileSink::Job {
  Batch batch;
  CompletionCallback done;
  std::vector<Completion> completions;
  std::vector<std::uint64_t> generations;  // the opening of OUTPUT_DIRECTORY each file went into
  std::atomic<std::size_t> slices_left{0};
};

/// What one writer thread keeps between files, so that a file costs no heap allocation.
class LocalFileSink::Writer {
 public:
  Writer(OutputDirectory& directory, const LocalFileSinkOptions& options, FileNaming naming,
         std::size_t index)
      : directory_(directory),
        options_(options),
        naming_(naming),
        // Unique per process and thread, so that two writers of one redelivered entry never share one.
        temporary_suffix_(fmt::format(".{}.{}.tmp", ::getpid(), index)) {}

  void write(Job& job, std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const Event& event = job.batch[i];
      Completion& completion = job.completions[i];
      completion.index = i;
      const auto milliseconds = entry_id_milliseconds(event.entry_id);
      if (!milliseconds) {
        completion.outcome = Outcome::Reject;
        completion.cause = Cause::Unencodable;
        completion.reason = fmt::format("entry ID '{}' cannot name a file", event.entry_id);
        continue;
      }
      buffer_.clear();
      render_event_file(buffer_, event, options_.stream_key);
      final_name_.assign(event.entry_id).append(".json");
      const std::uint64_t hour = options_.layout == OutputLayout::Hourly ? *milliseconds / 3'600'000 : 0;
      int error = 0;
      // A second attempt after the directory turned out to be gone (removed, replaced).
      for (int attempt = 0; attempt < 2; ++attempt) {
        error = write_here(hour);
        if (error != ENOENT) break;
        const std::uint64_t seen = current_ ? current_->generation() : directory_.root()->generation();
        if (!directory_.refresh(seen) && current_) directory_.forget(current_);  // an hour directory removed
        current_.reset();
      }
      if (error != 0) {
        // A full or read-only disk can heal; the pipeline retries with back-off.
        completion.outcome = Outcome::Retry;
        completion.cause = cause_of_errno(error);
        completion.reason =
            fmt::format("writing {} in '{}' failed: {}", relative_file_of(event.entry_id, options_.layout),
                        options_.directory.string(), errno_text(error));
      } else {
        job.generations[i] = current_->generation();
      }
    }
  }

 private:
  // Writes buffer_ as final_name_ into the directory of `hour`; 0 or an errno value.
  int write_here(std::uint64_t hour) {
    if (!current_ || hour != hour_ || current_->generation() != directory_.generation()) {
      current_ = directory_.directory_for(hour);
      hour_ = hour;
      if (!current_) return errno;
    }
    // Whatever fails here is done again the old way, which replaces an existing file (a redelivery:
    // EEXIST, as a link cannot) and reports errors as before (ext4 refuses O_TMPFILE in a removed
    // directory with EPERM, where creating a name gives ENOENT).
    if (naming_ != FileNaming::Rename && write_linked(current_->fd()) == 0) return 0;
    return write_renamed(current_->fd());
  }

  // An unnamed file in `directory`, named once complete: no temporary name to create and rename away,
  // and nothing left behind by a crash. 0 or an errno value.
  int write_linked(int directory) {
    const int fd = ::openat(directory, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (tmpfile_unsupported(errno)) naming_ = FileNaming::Rename;  // moved to another file system
      return errno;
    }
    int error = write_all(fd, buffer_) ? 0 : errno;
    if (error == 0) error = link_unnamed(naming_, fd, directory, final_name_.c_str());
    // A late write error, reported by close() (local file systems have none): retried, and the
    // redelivery replaces the file.
    if (::close(fd) != 0 && error == 0) error = errno;
    return error;
  }

  // A temporary name, then rename(): replaces an existing file. 0 or an errno value.
  int write_renamed(int directory) {
    // assign(1, '.'), not assign("."): GCC 12's -O3 -Wrestrict false positive (GCC bug 105651).
    temporary_.assign(1, '.').append(final_name_, 0, final_name_.size() - 5).append(temporary_suffix_);
    const int fd = ::openat(directory, temporary_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    int error = write_all(fd, buffer_) ? 0 : errno;
    if (::close(fd) != 0 && error == 0) error = errno;
    if (error == 0 && ::renameat(directory, temporary_.c_str(), directory, final_name_.c_str()) != 0)
      error = errno;
    if (error != 0) ::unlinkat(directory, temporary_.c_str(), 0);
    return error;
  }

  OutputDirectory& directory_;
  const LocalFileSinkOptions& options_;
  FileNaming naming_;
  const std::string temporary_suffix_;
  std::string buffer_;
  std::string temporary_;
  std::string final_name_;
  std::shared_ptr<const DirectoryHandle> current_;  // the directory of hour_
  std::uint64_t hour_ = 0;
};

LocalFileSink::LocalFileSink(LocalFileSinkOptions options)
    : options_(std::move(options)), directory_(options_.directory, options_.layout) {
  options_.writers = std::max<std::size_t>(options_.writers, 1);
}

LocalFileSink::~LocalFileSink() { stop(std::chrono::milliseconds(0)); }

void LocalFileSink::start() {
  directory_.open();
  naming_ = probe_file_naming(directory_.root()->fd());
  stopping_ = false;
  running_ = true;
  for (std::size_t i = 0; i < options_.writers; ++i) writers_.emplace_back([this, i] { run_writer(i); });
  if (options_.fsync) syncer_ = std::thread([this] { run_syncer(); });
  logger().info("output_ready", {{"output", "LOCAL_FILE"},
                                 {"directory", options_.directory.string()},
                                 {"fsync", options_.fsync},
                                 {"layout", options_.layout == OutputLayout::Hourly ? "hourly" : "flat"},
                                 {"writers", options_.writers},
                                 {"naming", naming_ == FileNaming::Rename ? "rename" : "link"}});
}

void LocalFileSink::send(Batch batch, CompletionCallback done) {
  if (batch.empty()) return;
  // Once per batch: a directory moved away (and recreated) is noticed even though writes into it succeed.
  directory_.refresh(directory_.root()->generation());
  auto job = std::make_shared<Job>();
  job->batch = std::move(batch);
  job->done = std::move(done);
  job->completions.resize(job->batch.size());
  job->generations.resize(job->batch.size());
  // Slices of at least kMinSlice entries: fewer hand-overs for small batches.
  constexpr std::size_t kMinSlice = 16;
  const std::size_t size = job->batch.size();
  const std::size_t slices = std::clamp<std::size_t>(size / kMinSlice, 1, options_.writers);
  job->slices_left = slices;
  {
    std::lock_guard lock(mutex_);
    for (std::size_t s = 0; s < slices; ++s)
      slices_.push_back(Slice{job, size * s / slices, size * (s + 1) / slices});
  }
  if (slices == 1) {
    work_.notify_one();
  } else {
    work_.notify_all();
  }
}

void LocalFileSink::stop(std::chrono::milliseconds grace) {
  if (writers_.empty()) return;
  {
    std::unique_lock lock(mutex_);
    idle_.wait_for(lock, grace, [this] { return slices_.empty() && unsynced_.empty() && busy_ == 0; });
    stopping_ = true;  // what is still queued is not reported: it stays pending in Redis
    slices_.clear();
    unsynced_.clear();
  }
  work_.notify_all();
  synced_.notify_all();
  for (auto& writer : writers_) writer.join();
  writers_.clear();
  if (syncer_.joinable()) syncer_.join();
  running_ = false;
}

std::size_t LocalFileSink::max_event_bytes() const { return std::numeric_limits<std::size_t>::max(); }

void LocalFileSink::run_writer(std::size_t index) {
  Writer writer(directory_, options_, naming_, index);
  for (;;) {
    Slice slice;
    {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [this] { return stopping_ || !slices_.empty(); });
      if (stopping_) return;
      slice = std::move(slices_.front());
      slices_.pop_front();
      ++busy_;
    }
    writer.write(*slice.job, slice.begin, slice.end);
    if (slice.job->slices_left.fetch_sub(1) == 1) written(slice.job);
    {
      std::lock_guard lock(mutex_);
      --busy_;
    }
    idle_.notify_all();
  }
}

void LocalFileSink::written(const std::shared_ptr<Job>& job) {
  const bool wrote_any = std::any_of(job->completions.begin(), job->completions.end(),
                                     [](const Completion& c) { return c.outcome == Outcome::Accepted; });
  if (!options_.fsync || !wrote_any) {
    finish(*job, {}, Cause::None);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    unsynced_.push_back(job);
  }
  synced_.notify_one();
}

void LocalFileSink::run_syncer() {
  for (;;) {
    std::vector<std::shared_ptr<Job>> jobs;
    {
      std::unique_lock lock(mutex_);
      synced_.wait(lock, [this] { return stopping_ || !unsynced_.empty(); });
      if (stopping_) return;
      jobs.swap(unsynced_);
      ++busy_;
    }
    // Every file of these jobs was written before this call: one syncfs() makes all of them, their
    // directory entries and any new hour directories durable (group commit: while it runs, the next
    // batches gather for the next one).
    std::string error;
    const int failed = ::syncfs(directory_.root()->fd()) != 0 ? errno : 0;
    if (failed != 0)
      error = fmt::format("syncfs on '{}' failed: {}", options_.directory.string(), errno_text(failed));
    for (const auto& job : jobs) finish(*job, error, cause_of_errno(failed));
    {
      std::lock_guard lock(mutex_);
      --busy_;
    }
    idle_.notify_all();
  }
}

void LocalFileSink::finish(Job& job, const std::string& sync_error, Cause sync_cause) {
  // Files written into a directory that the path no longer names (removed or replaced meanwhile) are
  // not where anyone looks: write them again.
  directory_.refresh(directory_.root()->generation());
  const std::uint64_t current = directory_.root()->generation();
  for (std::size_t i = 0; i < job.completions.size(); ++i) {
    Completion& completion = job.completions[i];
    if (completion.outcome != Outcome::Accepted) continue;
    if (!sync_error.empty()) {
      completion.outcome = Outcome::Retry;
      completion.cause = sync_cause;
      completion.reason = sync_error;
    } else if (job.generations[i] != current) {
      completion.outcome = Outcome::Retry;
      completion.cause = Cause::Io;
      completion.reason =
          fmt::format("OUTPUT_DIRECTORY '{}' was replaced while writing", options_.directory.string());
    }
  }
  job.done(std::move(job.completions));
  spent_.give(std::move(job.batch));
}

}  // namespace connector
