#include "sinks/local_file_sink.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "common/errors.hpp"
#include "core/json_writer.hpp"
#include "observability/logger.hpp"

namespace connector {
namespace {
// A stream entry ID is "<ms>-<seq>"; anything else never becomes a file name (no path tricks).
bool is_entry_id(std::string_view id) {
  const auto dash = id.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == id.size() || id.size() > 41) return false;
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (i != dash && (id[i] < '0' || id[i] > '9')) return false;
  }
  return true;
}

std::string errno_text(int error) { return std::strerror(error); }

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
}  // namespace

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
  } else if (is_valid_utf8(event.body)) {
    out.append(",\"bodyEncoding\":\"utf8\",\"body\":");
    append_json_string(out, event.body);
  } else {
    out.append(",\"bodyEncoding\":\"base64\",\"body\":\"");
    append_base64(out, event.body);
    out.push_back('"');
  }
  out.append("}\n");
}

LocalFileSink::LocalFileSink(LocalFileSinkOptions options) : options_(std::move(options)) {}

LocalFileSink::~LocalFileSink() {
  stop(std::chrono::milliseconds(0));
  if (directory_fd_ >= 0) ::close(directory_fd_);
}

void LocalFileSink::start() {
  std::error_code error;
  std::filesystem::create_directories(options_.directory, error);
  if (error) {
    throw ConnectorError(fmt::format("cannot create OUTPUT_DIRECTORY '{}': {}; check the path and its permissions",
                                     options_.directory.string(), error.message()));
  }
  directory_fd_ = ::open(options_.directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory_fd_ < 0 || ::faccessat(directory_fd_, ".", W_OK, AT_EACCESS) != 0) {
    throw ConnectorError(fmt::format("OUTPUT_DIRECTORY '{}' is not a writable directory: {}",
                                     options_.directory.string(), errno_text(errno)));
  }
  stopping_ = false;
  running_ = true;
  writer_ = std::thread([this] { run(); });
  logger().info("output_ready", {{"output", "LOCAL_FILE"},
                                 {"directory", options_.directory.string()},
                                 {"fsync", options_.fsync}});
}

void LocalFileSink::send(Batch batch, CompletionCallback done) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(Job{std::move(batch), std::move(done)});
  }
  changed_.notify_all();
}

void LocalFileSink::stop(std::chrono::milliseconds grace) {
  if (!writer_.joinable()) return;
  {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, grace, [this] { return jobs_.empty() && !busy_; });
    stopping_ = true;  // what is still queued is not reported: it stays pending in Redis
    jobs_.clear();
  }
  changed_.notify_all();
  writer_.join();
  running_ = false;
}

std::size_t LocalFileSink::max_event_bytes() const { return std::numeric_limits<std::size_t>::max(); }

void LocalFileSink::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      busy_ = true;
    }
    std::vector<Completion> completions = write_batch(job.batch);
    job.done(std::move(completions));
    {
      std::lock_guard lock(mutex_);
      busy_ = false;
    }
    changed_.notify_all();
  }
}

std::vector<Completion> LocalFileSink::write_batch(const Batch& batch) {
  std::vector<Completion> completions(batch.size());
  const std::string pid = std::to_string(::getpid());
  std::string temporary;
  std::string final_name;
  bool wrote_any = false;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Event& event = batch[i];
    Completion& completion = completions[i];
    completion.index = i;
    if (!is_entry_id(event.entry_id)) {
      completion.outcome = Outcome::Reject;
      completion.reason = fmt::format("entry ID '{}' cannot name a file", event.entry_id);
      continue;
    }
    buffer_.clear();
    render_event_file(buffer_, event, options_.stream_key);
    // Unique per process so that two instances writing a redelivered entry never share a temporary.
    temporary = fmt::format(".{}.{}.tmp", event.entry_id, pid);
    final_name = event.entry_id + ".json";
    const int fd = ::openat(directory_fd_, temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int error = 0;
    if (fd < 0) {
      error = errno;
    } else {
      if (!write_all(fd, buffer_)) error = errno;
      if (::close(fd) != 0 && error == 0) error = errno;
      if (error == 0 && ::renameat(directory_fd_, temporary.c_str(), directory_fd_, final_name.c_str()) != 0) {
        error = errno;
      }
      if (error != 0) ::unlinkat(directory_fd_, temporary.c_str(), 0);
    }
    if (error != 0) {
      // A full or read-only disk can heal; the pipeline retries with back-off.
      completion.outcome = Outcome::Retry;
      completion.reason = fmt::format("writing {} in '{}' failed: {}", final_name, options_.directory.string(),
                                      errno_text(error));
    } else {
      wrote_any = true;
    }
  }
  // One syncfs() makes every file and directory entry of the batch durable at once.
  if (options_.fsync && wrote_any && ::syncfs(directory_fd_) != 0) {
    const std::string reason =
        fmt::format("syncfs on '{}' failed: {}", options_.directory.string(), errno_text(errno));
    for (auto& completion : completions) {
      if (completion.outcome == Outcome::Accepted) {
        completion.outcome = Outcome::Retry;
        completion.reason = reason;
      }
    }
  }
  return completions;
}

}  // namespace connector
