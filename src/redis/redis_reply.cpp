#include "redis/redis_reply.hpp"

#include <hiredis/hiredis.h>

#include <array>
#include <utility>

namespace connector {
namespace {

// Texts in describe() end up in log lines and exception messages: keep them short and printable.
constexpr std::size_t kMaxDescribedBytes = 120;

std::string printable(std::string_view text) {
  std::string out;
  const std::size_t shown = text.size() < kMaxDescribedBytes ? text.size() : kMaxDescribedBytes;
  out.reserve(shown + 16);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  if (shown < text.size()) out += "…";
  return out;
}

struct ReplyCodeWord {
  RedisReplyCode code;
  std::string_view word;
};
// Cluster and Sentinel support reads MOVED, ASK and READONLY from here too.
constexpr std::array<ReplyCodeWord, 10> kReplyCodes = {{
    {RedisReplyCode::NoGroup, "NOGROUP"},
    {RedisReplyCode::Unblocked, "UNBLOCKED"},
    {RedisReplyCode::WrongType, "WRONGTYPE"},
    {RedisReplyCode::BusyGroup, "BUSYGROUP"},
    {RedisReplyCode::Oom, "OOM"},
    {RedisReplyCode::NoPerm, "NOPERM"},
    {RedisReplyCode::NoAuth, "NOAUTH"},
    {RedisReplyCode::ReadOnly, "READONLY"},
    {RedisReplyCode::Moved, "MOVED"},
    {RedisReplyCode::Ask, "ASK"},
}};
}  // namespace

RedisReplyCode redis_reply_code(std::string_view error_text) noexcept {
  const std::string_view word = error_text.substr(0, error_text.find(' '));
  for (const auto& entry : kReplyCodes) {
    if (entry.word == word) return entry.code;
  }
  return RedisReplyCode::Other;
}

std::string_view redis_reply_word(RedisReplyCode code) noexcept {
  for (const auto& entry : kReplyCodes) {
    if (entry.code == code) return entry.word;
  }
  return {};
}

bool RedisReplyView::is_nil() const { return reply_ == nullptr || reply_->type == REDIS_REPLY_NIL; }
bool RedisReplyView::is_error() const { return reply_ != nullptr && reply_->type == REDIS_REPLY_ERROR; }
bool RedisReplyView::is_status() const { return reply_ != nullptr && reply_->type == REDIS_REPLY_STATUS; }
bool RedisReplyView::is_string() const { return reply_ != nullptr && reply_->type == REDIS_REPLY_STRING; }
bool RedisReplyView::is_integer() const { return reply_ != nullptr && reply_->type == REDIS_REPLY_INTEGER; }
bool RedisReplyView::is_array() const { return reply_ != nullptr && reply_->type == REDIS_REPLY_ARRAY; }

std::string_view RedisReplyView::str() const {
  if (is_string() || is_status() || is_error()) {
    return reply_->str == nullptr ? std::string_view{} : std::string_view(reply_->str, reply_->len);
  }
  return {};
}

long long RedisReplyView::integer() const { return is_integer() ? reply_->integer : 0; }

std::size_t RedisReplyView::size() const { return is_array() ? reply_->elements : 0; }

RedisReplyView RedisReplyView::operator[](std::size_t index) const {
  if (index >= size()) return RedisReplyView{};
  return RedisReplyView{reply_->element[index]};
}

std::string RedisReplyView::describe() const {
  if (is_nil()) return "nil";
  switch (reply_->type) {
    case REDIS_REPLY_ERROR:
      return "error reply: " + printable(str());
    case REDIS_REPLY_STATUS:
      return "status reply: " + printable(str());
    case REDIS_REPLY_STRING:
      return "string of " + std::to_string(reply_->len) + " bytes: \"" + printable(str()) + "\"";
    case REDIS_REPLY_INTEGER:
      return "integer " + std::to_string(reply_->integer);
    case REDIS_REPLY_ARRAY:
      return "array of " + std::to_string(reply_->elements);
    default:
      return "reply of unknown type " + std::to_string(reply_->type);
  }
}

RedisReply::RedisReply(redisReply* reply) : RedisReplyView(reply), owned_(reply) {}

RedisReply::RedisReply(redisReply* reply, std::unique_ptr<ReplyArena> arena)
    : RedisReplyView(reply), arena_(std::move(arena)) {}

RedisReply::~RedisReply() { ReplyArena::recycle(std::move(arena_)); }

RedisReply::RedisReply(RedisReply&& other) noexcept
    : RedisReplyView(std::exchange(other.reply_, nullptr)),
      owned_(std::move(other.owned_)),
      arena_(std::move(other.arena_)) {}

RedisReply& RedisReply::operator=(RedisReply&& other) noexcept {
  if (this != &other) {
    owned_ = std::move(other.owned_);
    ReplyArena::recycle(std::move(arena_));
    arena_ = std::move(other.arena_);
    reply_ = std::exchange(other.reply_, nullptr);
  }
  return *this;
}

void RedisReply::Free::operator()(redisReply* reply) const { freeReplyObject(reply); }

}  // namespace connector
