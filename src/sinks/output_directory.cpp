#include "sinks/output_directory.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>

#include "common/errors.hpp"
#include "observability/logger.hpp"

namespace connector {
namespace {
constexpr std::uint64_t kMillisecondsPerHour = 3'600'000;
// Hour directories stay open while their hour is written; a lagging reader or claims may touch a few
// older hours at once. Beyond this, the oldest are closed (and reopened if needed again).
constexpr std::size_t kOpenHourLimit = 32;

int open_directory(int parent, const char* path) {
  return ::openat(parent, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}
}  // namespace

DirectoryHandle::~DirectoryHandle() { ::close(fd_); }

std::string hourly_directory_of(std::uint64_t milliseconds) {
  const auto seconds = static_cast<std::time_t>(milliseconds / kMillisecondsPerHour * 3600);
  std::tm utc{};
  if (::gmtime_r(&seconds, &utc) == nullptr) return {};
  return fmt::format("{:04}/{:02}/{:02}/{:02}", utc.tm_year + 1900LL, utc.tm_mon + 1, utc.tm_mday,
                     utc.tm_hour);
}

// A stream ID is two unsigned 64-bit numbers, at most 20 digits each, and a dash.
constexpr std::size_t kMaxStreamIdLength = 20 + 1 + 20;

std::optional<std::uint64_t> entry_id_milliseconds(std::string_view entry_id) {
  const auto dash = entry_id.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == entry_id.size() ||
      entry_id.size() > kMaxStreamIdLength)
    return {};
  for (std::size_t i = 0; i < entry_id.size(); ++i) {
    if (i != dash && (entry_id[i] < '0' || entry_id[i] > '9')) return {};
  }
  std::uint64_t milliseconds = 0;
  const auto [end, error] = std::from_chars(entry_id.data(), entry_id.data() + dash, milliseconds);
  if (error != std::errc() || end != entry_id.data() + dash) return {};
  return milliseconds;
}

std::string relative_file_of(std::string_view entry_id, OutputLayout layout) {
  const auto milliseconds = entry_id_milliseconds(entry_id);
  if (!milliseconds) return {};
  std::string file = std::string(entry_id) + ".json";
  if (layout == OutputLayout::Flat) return file;
  const std::string hour = hourly_directory_of(*milliseconds);
  return hour.empty() ? std::string() : hour + "/" + file;
}

OutputDirectory::OutputDirectory(std::filesystem::path path, OutputLayout layout)
    : path_(std::move(path)), layout_(layout) {}

void OutputDirectory::open() {
  std::lock_guard lock(mutex_);
  root_ = open_root(generation_);
  if (!root_) {
    throw ConnectorError(
        fmt::format("OUTPUT_DIRECTORY '{}' is not a writable directory: {}; check the path "
                    "and its permissions",
                    path_.string(), std::strerror(errno)));
  }
}

std::shared_ptr<DirectoryHandle> OutputDirectory::open_root(std::uint64_t generation) {
  std::error_code error;
  std::filesystem::create_directories(path_, error);
  if (error) {
    errno = error.value();
    return nullptr;
  }
  const int fd = open_directory(AT_FDCWD, path_.c_str());
  if (fd < 0) return nullptr;
  auto handle = std::make_shared<DirectoryHandle>(fd, generation);
  struct stat status {};
  if (::fstat(fd, &status) != 0 || ::faccessat(fd, ".", W_OK, AT_EACCESS) != 0) return nullptr;
  root_device_ = status.st_dev;
  root_inode_ = status.st_ino;
  return handle;
}

std::shared_ptr<const DirectoryHandle> OutputDirectory::root() {
  std::lock_guard lock(mutex_);
  return root_;
}

std::shared_ptr<const DirectoryHandle> OutputDirectory::directory_for(std::uint64_t hour) {
  std::lock_guard lock(mutex_);
  if (layout_ == OutputLayout::Flat) return root_;
  if (const auto found = hours_.find(hour); found != hours_.end()) return found->second;
  auto handle = open_hour(hour);
  if (!handle) return nullptr;
  if (hours_.size() >= kOpenHourLimit) hours_.erase(hours_.begin());
  hours_.emplace(hour, handle);
  return handle;
}

std::shared_ptr<DirectoryHandle> OutputDirectory::open_hour(std::uint64_t hour) {
  const std::string relative = hourly_directory_of(hour * kMillisecondsPerHour);
  if (relative.empty()) {
    errno = EOVERFLOW;
    return nullptr;
  }
  int fd = open_directory(root_->fd(), relative.c_str());
  if (fd < 0 && errno == ENOENT) {
    // "YYYY", "YYYY/MM", "YYYY/MM/DD", "YYYY/MM/DD/HH"; another writer may create any of them first.
    for (std::size_t slash = relative.find('/');; slash = relative.find('/', slash + 1)) {
      const std::string part = relative.substr(0, slash);
      if (::mkdirat(root_->fd(), part.c_str(), 0755) != 0 && errno != EEXIST) return nullptr;
      if (slash == std::string::npos) break;
    }
    fd = open_directory(root_->fd(), relative.c_str());
  }
  if (fd < 0) return nullptr;
  return std::make_shared<DirectoryHandle>(fd, generation_);
}

bool OutputDirectory::refresh(std::uint64_t seen) {
  std::lock_guard lock(mutex_);
  if (seen != generation_) return true;  // another writer reopened it already
  struct stat named {};
  const bool exists = ::stat(path_.c_str(), &named) == 0;
  if (exists && named.st_dev == root_device_ && named.st_ino == root_inode_) return false;
  auto reopened = open_root(generation_ + 1);
  if (!reopened) {
    logger().error("output_directory_unavailable",
                   {{"directory", path_.string()}, {"error", std::strerror(errno)}});
    return false;  // the writes fail and are retried; the next failure tries again
  }
  ++generation_;
  root_ = std::move(reopened);
  current_generation_.store(generation_, std::memory_order_release);
  hours_.clear();
  logger().warn("output_directory_reopened",
                {{"directory", path_.string()}, {"reason", exists ? "replaced" : "removed, created again"}});
  return true;
}

void OutputDirectory::forget(const std::shared_ptr<const DirectoryHandle>& directory) {
  std::lock_guard lock(mutex_);
  for (auto it = hours_.begin(); it != hours_.end(); ++it) {
    if (it->second == directory) {
      hours_.erase(it);
      return;
    }
  }
}

}  // namespace connector
