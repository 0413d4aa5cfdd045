#pragma once
// Where LOCAL_FILE puts its files: OUTPUT_DIRECTORY, held open, and (hourly layout) its hour directories.
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace connector {

/// One open directory; closed when the last writer using it lets go.
class DirectoryHandle {
 public:
  DirectoryHandle(int fd, std::uint64_t generation) : fd_(fd), generation_(generation) {}
  ~DirectoryHandle();
  DirectoryHandle(const DirectoryHandle&) = delete;
  DirectoryHandle& operator=(const DirectoryHandle&) = delete;
  int fd() const { return fd_; }
  /// Which opening of OUTPUT_DIRECTORY this belongs to (see OutputDirectory::refresh).
  std::uint64_t generation() const { return generation_; }

 private:
  int fd_;
  std::uint64_t generation_;
};

/// The millisecond part of a stream entry ID ("<ms>-<seq>"); nothing for anything else, which then
/// names no file (no path tricks).
std::optional<std::uint64_t> entry_id_milliseconds(std::string_view entry_id);

/// The hour directory of an entry ID's millisecond time, "YYYY/MM/DD/HH" in UTC.
std::string hourly_directory_of(std::uint64_t milliseconds);

/// The file an entry goes to, relative to OUTPUT_DIRECTORY: "<id>.json" or "YYYY/MM/DD/HH/<id>.json".
/// Empty when `entry_id` is not a stream entry ID ("<ms>-<seq>"), which then names no file.
std::string relative_file_of(std::string_view entry_id, OutputLayout layout);

/// OUTPUT_DIRECTORY held open by path. Notices when the path was removed or now names another
/// directory (deleted and recreated, moved away) and opens it again, so writes never go on into a
/// directory nobody can see. Thread-safe: every writer thread shares one.
class OutputDirectory {
 public:
  OutputDirectory(std::filesystem::path path, OutputLayout layout);

  /// Creates the path when missing and opens it; throws ConnectorError naming OUTPUT_DIRECTORY.
  void open();
  /// The directory for a file of the hour `hour` (milliseconds / 3 600 000), creating it when
  /// missing; the root itself for the flat layout. Null (with errno set) when it cannot be had.
  std::shared_ptr<const DirectoryHandle> directory_for(std::uint64_t hour);
  /// The root, for syncfs().
  std::shared_ptr<const DirectoryHandle> root();
  /// After a write into a directory of generation `seen` failed, or once per batch: reopens the path
  /// when it no longer names the open directory. True when files written under `seen` are not in
  /// the directory the path names now (so write them again).
  bool refresh(std::uint64_t seen);
  /// The generation of the directory the path names now (lock-free): a writer whose cached handle is
  /// older must take a new one, or it keeps writing into a directory moved away.
  std::uint64_t generation() const { return current_generation_.load(std::memory_order_acquire); }
  /// Forgets a cached hour directory that turned out to be gone (removed by a clean-up job).
  void forget(const std::shared_ptr<const DirectoryHandle>& directory);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::shared_ptr<DirectoryHandle> open_root(std::uint64_t generation);
  std::shared_ptr<DirectoryHandle> open_hour(std::uint64_t hour);

  const std::filesystem::path path_;
  const OutputLayout layout_;
  std::mutex mutex_;  // guards everything below
  std::uint64_t generation_ = 0;
  std::shared_ptr<DirectoryHandle> root_;
  dev_t root_device_ = 0;
  ino_t root_inode_ = 0;
  std::map<std::uint64_t, std::shared_ptr<DirectoryHandle>> hours_;  // hour → open directory, bounded
  std::atomic<std::uint64_t> current_generation_{0};  // generation_, for readers without the mutex
};

}  // namespace connector
