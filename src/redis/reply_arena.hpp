#pragma once
// Replies built in one block of memory instead of one allocation per element.
#include <cstddef>
#include <memory>
#include <vector>

struct redisReadTask;
struct redisReply;
struct redisReplyObjectFunctions;

namespace connector {

/// A bump allocator for one reply's tree: hiredis's reader builds every element and string of a reply
/// in it (reply_arena_functions()), and the whole tree is released at once. An XREADGROUP reply of
/// 1000 entries is ~15 000 elements; one allocation each was most of the reader thread's time.
class ReplyArena {
 public:
  ReplyArena() = default;
  ReplyArena(const ReplyArena&) = delete;
  ReplyArena& operator=(const ReplyArena&) = delete;

  /// `bytes` aligned for any reply field, uninitialised. Throws std::bad_alloc.
  void* allocate(std::size_t bytes);
  /// Forgets everything allocated; keeps one block (of a bounded size) for the next reply.
  void reset() noexcept;

  /// An arena for the next reply on this thread: the one released last on this thread, or a new one.
  static std::unique_ptr<ReplyArena> take();
  /// Resets `arena` and keeps it for the next take() on this thread.
  static void recycle(std::unique_ptr<ReplyArena> arena) noexcept;

 private:
  struct Block {
    std::unique_ptr<std::byte[]> memory;
    std::size_t size = 0;
  };
  std::vector<Block> blocks_;
  std::size_t used_ = 0;  // bytes used in blocks_.back()
};

/// Runs the work of a hiredis reader callback: hiredis takes a null result as out of memory and fails the
/// reader, and an exception must not cross its C frames.
template <typename Build>
void* guard_reader_callback(Build build) noexcept {
  try {
    return build();
  } catch (...) {
    return nullptr;
  }
}

/// hiredis reader callbacks that build standard `redisReply` trees in the ReplyArena that the
/// reader's `privdata` points to. freeObject does nothing: the arena owns the memory.
redisReplyObjectFunctions* reply_arena_functions();

}  // namespace connector
