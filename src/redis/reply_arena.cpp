#include "redis/reply_arena.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace connector {
namespace {

constexpr std::size_t kAlignment = alignof(std::max_align_t);
constexpr std::size_t kFirstBlock = 64 * 1024;
// A block this large (a reply of many big entries) is given back instead of kept for the next reply,
// so that one huge reply does not stay in memory for the life of the thread.
constexpr std::size_t kMaxRetainedBlock = 4 * 1024 * 1024;

constexpr std::size_t aligned(std::size_t bytes) { return (bytes + kAlignment - 1) & ~(kAlignment - 1); }

thread_local std::unique_ptr<ReplyArena> spare_arena;

ReplyArena& arena_of(const redisReadTask* task) { return *static_cast<ReplyArena*>(task->privdata); }

redisReply* new_element(const redisReadTask* task, int type) {
  auto* reply = static_cast<redisReply*>(arena_of(task).allocate(sizeof(redisReply)));
  std::memset(reply, 0, sizeof(redisReply));
  reply->type = type;
  if (task->parent != nullptr) {
    // Same contract as hiredis's own functions: the element hangs itself into its parent array.
    auto* parent = static_cast<redisReply*>(task->parent->obj);
    parent->element[task->idx] = reply;
  }
  return reply;
}

void* create_string(const redisReadTask* task, char* text, std::size_t length) {
  return guard_reader_callback([&] {
    redisReply* reply = new_element(task, task->type);
    auto* copy = static_cast<char*>(arena_of(task).allocate(length + 1));
    if (length != 0) std::memcpy(copy, text, length);
    copy[length] = '\0';
    reply->str = copy;
    reply->len = length;
    return reply;
  });
}

void* create_array(const redisReadTask* task, int elements) {
  return guard_reader_callback([&] {
    redisReply* reply = new_element(task, REDIS_REPLY_ARRAY);
    if (elements > 0) {
      const auto count = static_cast<std::size_t>(elements);
      auto** slots = static_cast<redisReply**>(arena_of(task).allocate(count * sizeof(redisReply*)));
      std::fill_n(slots, count, nullptr);
      reply->element = slots;
      reply->elements = count;
    }
    return reply;
  });
}

void* create_integer(const redisReadTask* task, long long value) {
  return guard_reader_callback([&] {
    redisReply* reply = new_element(task, REDIS_REPLY_INTEGER);
    reply->integer = value;
    return reply;
  });
}

void* create_nil(const redisReadTask* task) {
  return guard_reader_callback([&] { return new_element(task, REDIS_REPLY_NIL); });
}

void free_nothing(void*) {}

redisReplyObjectFunctions arena_functions = {create_string, create_array, create_integer, create_nil,
                                             free_nothing};

}  // namespace

void* ReplyArena::allocate(std::size_t bytes) {
  bytes = aligned(bytes);
  if (blocks_.empty() || blocks_.back().size - used_ < bytes) {
    const std::size_t previous = blocks_.empty() ? kFirstBlock / 2 : blocks_.back().size;
    const std::size_t size = std::max(previous * 2, aligned(bytes));
    blocks_.push_back(Block{std::make_unique_for_overwrite<std::byte[]>(size), size});
    used_ = 0;
  }
  void* at = blocks_.back().memory.get() + used_;
  used_ += bytes;
  return at;
}

void ReplyArena::reset() noexcept {
  // Keep the largest block that is not too large: the next reply of the same size fits in it.
  if (!blocks_.empty()) {
    auto largest = std::move(blocks_.back());
    blocks_.clear();
    if (largest.size <= kMaxRetainedBlock) blocks_.push_back(std::move(largest));
  }
  used_ = 0;
}

std::unique_ptr<ReplyArena> ReplyArena::take() {
  if (spare_arena) return std::move(spare_arena);
  return std::make_unique<ReplyArena>();
}

void ReplyArena::recycle(std::unique_ptr<ReplyArena> arena) noexcept {
  if (!arena) return;
  arena->reset();
  if (!spare_arena) spare_arena = std::move(arena);
}

redisReplyObjectFunctions* reply_arena_functions() { return &arena_functions; }

}  // namespace connector
