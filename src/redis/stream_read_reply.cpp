#include "redis/stream_read_reply.hpp"

#include "redis/reply_arena.hpp"

#include <hiredis/hiredis.h>

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace connector {
namespace {

/// What a node is in `[[key, [[id, [field, value, …] | nil] | nil, …]]]` (Streams shape; the Entries
/// shape starts at the entries array). A node's role travels as the object hiredis hands to its
/// children (task->parent->obj).
enum class Role : unsigned char { Root, Stream, Key, Entries, Entry, Id, Fields, Field, Skipped };

Role role_tags[] = {Role::Root,  Role::Stream, Role::Key,   Role::Entries, Role::Entry,
                    Role::Id,    Role::Fields, Role::Field, Role::Skipped};

void* tag(Role role) { return &role_tags[static_cast<std::size_t>(role)]; }

/// The role of a child by its parent's role and whether it is the parent's first element.
constexpr Role kChildRole[][2] = {
    /* Root    */ {Role::Stream, Role::Stream},
    /* Stream  */ {Role::Entries, Role::Key},
    /* Key     */ {Role::Skipped, Role::Skipped},  // a stream key of another type
    /* Entries */ {Role::Entry, Role::Entry},
    /* Entry   */ {Role::Fields, Role::Id},
    /* Id      */ {Role::Skipped, Role::Skipped},
    /* Fields  */ {Role::Field, Role::Field},
    /* Field   */ {Role::Skipped, Role::Skipped},
    /* Skipped */ {Role::Skipped, Role::Skipped},  // anything after a fault
};

/// The role the reply's shape gives the node that `task` reads.
inline Role role_of(const redisReadTask* task, StreamReplyShape shape) {
  if (task->parent == nullptr) return shape == StreamReplyShape::Streams ? Role::Root : Role::Entries;
  const auto parent = static_cast<std::size_t>(*static_cast<const Role*>(task->parent->obj));
  return kChildRole[parent][task->idx == 0];
}

/// Reservations follow the counts a reply announces only this far: a misbehaving peer announcing two
/// billion elements must not make one huge allocation before it has sent them (COUNT bounds real replies).
constexpr std::size_t kMaxReserved = 1 << 16;

/// One node as RedisReplyView::describe() words it, for fault texts.
struct Node {
  int type;
  const char* text = nullptr;
  std::size_t length = 0;
  long long integer = 0;
  int elements = 0;

  std::string describe() const {
    redisReply reply{};
    reply.type = type;
    reply.str = const_cast<char*>(text);
    reply.len = length;
    reply.integer = integer;
    reply.elements = static_cast<std::size_t>(elements);
    return RedisReplyView(&reply).describe();
  }
};

}  // namespace

/// The hiredis callbacks; privdata is the StreamReadReply. They never throw into C
/// (guard_reader_callback): a failure to allocate is reported by hiredis as out of memory.
struct StreamReadReplyCallbacks {
  static StreamReadReply& reply_of(const redisReadTask* task) { return *static_cast<StreamReadReply*>(task->privdata); }

  /// Records the first fault; everything after it is only consumed.
  static void* fault(StreamReadReply& reply, std::string text) {
    if (reply.fault_.empty()) reply.fault_ = std::move(text);
    return tag(Role::Skipped);
  }

  /// A node that builds nothing: under the stream key or after a fault it is only consumed; anywhere else
  /// it is the fault.
  static void* misplaced(StreamReadReply& reply, Role role, const redisReadTask* task, const Node& node) {
    switch (role) {
      case Role::Root:
        return fault(reply, fmt::format("{} on stream '{}': unexpected reply {}", reply.command_,
                                        reply.stream_key_, node.describe()));
      case Role::Stream:
        return fault(reply, fmt::format("{} on stream '{}': unexpected reply, an array of 1 holding {}",
                                        reply.command_, reply.stream_key_, node.describe()));
      case Role::Entries:
        return fault(
            reply, fmt::format("{}: expected an array of entries, got {}", reply.command_, node.describe()));
      case Role::Entry:
        return fault(reply, fmt::format("{}: expected [id, fields] for entry {}, got {}", reply.command_,
                                        task->idx, node.describe()));
      case Role::Id:
        return fault(reply,
                     fmt::format("{}: expected [id, fields] for entry {}, got array of 2 whose id is {}",
                                 reply.command_, reply.entry_position_, node.describe()));
      case Role::Fields:
        return fault(reply, fmt::format("{}: entry {} has malformed fields ({})", reply.command_,
                                        reply.entries_.back().id, node.describe()));
      case Role::Field:
        return fault(reply, fmt::format("{}: entry {} has malformed fields (item {} is {})", reply.command_,
                                        reply.entries_.back().id, task->idx, node.describe()));
      case Role::Key:
      case Role::Skipped:
        break;
    }
    return tag(Role::Skipped);
  }

  static Role role_here(const StreamReadReply& reply, const redisReadTask* task) {
    return reply.fault_.empty() ? role_of(task, reply.shape_) : Role::Skipped;
  }

  static void* create_string(const redisReadTask* task, char* text, std::size_t length) noexcept {
    return guard_reader_callback([&]() -> void* {
      StreamReadReply& reply = reply_of(task);
      if (task->parent == nullptr && task->type == REDIS_REPLY_ERROR) {
        // error() empty means "no error": an error reply without text still has to read as one.
        if (length == 0) {
          reply.error_ = "(an error reply without text)";
        } else {
          reply.error_.assign(text, length);
        }
        return tag(Role::Skipped);
      }
      const Role role = role_here(reply, task);
      const bool bulk = task->type == REDIS_REPLY_STRING;
      switch (role) {
        case Role::Id:
          if (!bulk) break;
          reply.entries_.back().id.assign(text, length);
          return tag(Role::Skipped);
        case Role::Field:
          // Field names and values are bulk strings; a status reply is text all the same.
          if (!bulk && task->type != REDIS_REPLY_STATUS) break;
          if (task->idx % 2 == 0) {
            reply.entries_.back().fields.add_name({text, length});
          } else {
            reply.entries_.back().fields.add_value({text, length});
          }
          return tag(Role::Skipped);
        default:
          break;
      }
      return misplaced(reply, role, task, Node{task->type, text, length});
    });
  }

  static void* create_array(const redisReadTask* task, int elements) noexcept {
    return guard_reader_callback([&]() -> void* {
      StreamReadReply& reply = reply_of(task);
      const Role role = role_here(reply, task);
      switch (role) {
        case Role::Root:
          if (elements != 1) break;
          return tag(Role::Root);
        case Role::Stream:
          if (elements != 2) break;
          return tag(Role::Stream);
        case Role::Entries:
          reply.delivered_ = static_cast<std::size_t>(elements);
          reply.entries_.reserve(std::min(reply.delivered_, kMaxReserved));
          return tag(Role::Entries);
        case Role::Entry:
          if (elements != 2) break;
          reply.entry_position_ = static_cast<std::size_t>(task->idx);
          if (!reply.entries_.empty() && reply.entries_.back().fields.text_size() != 0) {
            reply.last_text_size_ = reply.entries_.back().fields.text_size();
          }
          reply.entries_.emplace_back();
          return tag(Role::Entry);
        case Role::Fields:
          if (elements % 2 != 0) break;
          // The text of an entry is sized like the one before it, with an eighth to spare: entries of one
          // stream look alike (a counter gains a digit, a value varies a little), and a guess too small
          // only means a reallocation or two.
          reply.entries_.back().fields.reserve(
              std::min(static_cast<std::size_t>(elements) / 2, kMaxReserved),
              std::min(reply.last_text_size_ + reply.last_text_size_ / 8, kMaxReserved));
          return tag(Role::Fields);
        default:
          break;
      }
      return misplaced(reply, role, task, Node{REDIS_REPLY_ARRAY, nullptr, 0, 0, elements});
    });
  }

  static void* create_integer(const redisReadTask* task, long long value) noexcept {
    return guard_reader_callback([&]() -> void* {
      StreamReadReply& reply = reply_of(task);
      return misplaced(reply, role_here(reply, task), task, Node{REDIS_REPLY_INTEGER, nullptr, 0, value});
    });
  }

  static void* create_nil(const redisReadTask* task) noexcept {
    return guard_reader_callback([&]() -> void* {
      StreamReadReply& reply = reply_of(task);
      if (task->parent == nullptr) {
        reply.nil_ = true;
        return tag(Role::Skipped);
      }
      const Role role = role_here(reply, task);
      switch (role) {
        case Role::Fields:
          reply.entries_.back().deleted = true;  // pending, but trimmed from the stream
          return tag(Role::Skipped);
        case Role::Entries:  // no entries
        case Role::Entry:    // an entry Redis cannot name
          return tag(Role::Skipped);
        default:
          break;
      }
      return misplaced(reply, role, task, Node{REDIS_REPLY_NIL});
    });
  }

  static void free_nothing(void*) {}  // the entries belong to the StreamReadReply

  static inline redisReplyObjectFunctions functions = {create_string, create_array, create_integer, create_nil,
                                                        free_nothing};
};

StreamReadReply::StreamReadReply(StreamReplyShape shape, std::string command, std::string stream_key)
    : shape_(shape), command_(std::move(command)), stream_key_(std::move(stream_key)) {}

ReplyBuilder StreamReadReply::builder() noexcept { return {&StreamReadReplyCallbacks::functions, this}; }

void StreamReadReply::clear() {
  entries_.clear();
  delivered_ = 0;
  entry_position_ = 0;
  nil_ = false;
  error_.clear();
  fault_.clear();
}

}  // namespace connector
