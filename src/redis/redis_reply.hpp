#pragma once
// Typed access to hiredis replies; a parser never trusts the server (STYLE.md rule 4).
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/errors.hpp"
#include "redis/reply_arena.hpp"

struct redisReply;

namespace connector {

/// A non-owning view of one (possibly nested) reply. Valid while the owning RedisReply lives.
class RedisReplyView {
 public:
  RedisReplyView() = default;
  explicit RedisReplyView(const redisReply* reply) : reply_(reply) {}

  bool is_nil() const;  // also true for a default-constructed view
  bool is_error() const;
  bool is_status() const;
  bool is_string() const;  // bulk string
  bool is_integer() const;
  bool is_array() const;

  std::string_view str() const;                        // bulk string, status or error text; empty otherwise
  long long integer() const;                           // 0 unless an integer
  std::size_t size() const;                            // array elements; 0 unless an array
  RedisReplyView operator[](std::size_t index) const;  // nil view when out of range
  /// "array of 3", "error", "nil"… for error messages about unexpected replies.
  std::string describe() const;

 protected:
  const redisReply* reply_ = nullptr;
};

/// The code an error reply's text starts with ("NOGROUP No such key..." → NoGroup), from the one table
/// of the codes the connector acts on; Other for any other code. A code is a whole word, in capitals.
RedisReplyCode redis_reply_code(std::string_view error_text) noexcept;
/// The word of a code in that table ("NOGROUP"); empty for Other.
std::string_view redis_reply_word(RedisReplyCode code) noexcept;

/// Owns a top-level reply: one hiredis built with its own allocator, or one built in a ReplyArena.
class RedisReply : public RedisReplyView {
 public:
  RedisReply() = default;
  explicit RedisReply(redisReply* reply);
  /// A reply whose whole tree lives in `arena` (reply_arena_functions()).
  RedisReply(redisReply* reply, std::unique_ptr<ReplyArena> arena);
  ~RedisReply();
  // The moved-from reply becomes nil instead of keeping a view of memory it no longer owns.
  RedisReply(RedisReply&& other) noexcept;
  RedisReply& operator=(RedisReply&& other) noexcept;
  explicit operator bool() const { return owned_ != nullptr || arena_ != nullptr; }

 private:
  struct Free {
    void operator()(redisReply* reply) const;
  };
  std::unique_ptr<redisReply, Free> owned_;
  std::unique_ptr<ReplyArena> arena_;
};

}  // namespace connector
