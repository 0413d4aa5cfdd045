#include "redis/stream_consumer.hpp"

#include <charconv>
#include <chrono>
#include <ctime>

#include <fmt/format.h>

namespace connector {
namespace {
constexpr std::size_t kMaxIdsPerAck = 1000;

std::string iso8601_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ms % 1000);
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

template <typename Number>
bool parse_number(std::string_view text, Number& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc{} && end == text.data() + text.size();
}
}  // namespace

std::vector<StreamEntry> parse_entries(RedisReplyView reply, std::string_view command) {
  std::vector<StreamEntry> entries;
  if (reply.is_nil()) return entries;
  if (!reply.is_array()) {
    throw RedisStreamError(fmt::format("{}: expected an array of entries, got {}", command, reply.describe()));
  }
  entries.reserve(reply.size());
  for (std::size_t i = 0; i < reply.size(); ++i) {
    const RedisReplyView item = reply[i];
    if (item.is_nil()) continue;  // XCLAIM on Redis < 7 answers nil for a deleted entry it cannot name
    if (!item.is_array() || item.size() != 2 || !item[0].is_string()) {
      throw RedisStreamError(fmt::format("{}: expected [id, fields] for entry {}, got {}", command, i,
                                         item.describe()));
    }
    StreamEntry entry;
    entry.id = std::string(item[0].str());
    const RedisReplyView fields = item[1];
    if (fields.is_nil()) {
      entry.deleted = true;
    } else if (!fields.is_array() || fields.size() % 2 != 0) {
      throw RedisStreamError(fmt::format("{}: entry {} has malformed fields ({})", command, entry.id,
                                         fields.describe()));
    } else {
      entry.fields.reserve(fields.size() / 2);
      for (std::size_t f = 0; f + 1 < fields.size(); f += 2) {
        entry.fields.push_back({std::string(fields[f].str()), std::string(fields[f + 1].str())});
      }
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::optional<RedisVersion> parse_redis_version(std::string_view info) {
  constexpr std::string_view kKey = "redis_version:";
  const auto at = info.find(kKey);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = info.substr(at + kKey.size());
  rest = rest.substr(0, rest.find_first_of("\r\n"));
  RedisVersion version;
  int* parts[] = {&version.major, &version.minor, &version.patch};
  for (int index = 0; index < 3; ++index) {
    const auto dot = rest.find('.');
    if (!parse_number(rest.substr(0, dot), *parts[index])) return index >= 2 ? std::optional(version) : std::nullopt;
    if (dot == std::string_view::npos) break;
    rest = rest.substr(dot + 1);
  }
  return version;
}

StreamConsumer::StreamConsumer(RedisConnection& connection, StreamConsumerOptions options)
    : connection_(connection), options_(std::move(options)) {
  if (options_.dead_letter_stream.empty()) options_.dead_letter_stream = options_.stream_key + ":dead-letter";
}

RedisReply StreamConsumer::run(const std::vector<std::string_view>& argv, std::string_view what) {
  RedisReply reply = connection_.command(argv);
  if (reply.is_error()) {
    const std::string_view text = reply.str();
    if (starts_with(text, "NOGROUP")) {
      throw NoGroupError(fmt::format("{} on stream '{}': consumer group '{}' or the stream does not exist",
                                     what, options_.stream_key, options_.group));
    }
    throw RedisStreamError(fmt::format("{} on stream '{}' failed: {}", what, options_.stream_key, text));
  }
  return reply;
}

RedisVersion StreamConsumer::check_server() {
  RedisReply reply = connection_.command({"INFO", "server"});
  if (!reply.is_string()) {
    throw RedisStreamError(fmt::format("INFO server on {} answered {}, not the server description",
                                       connection_.endpoint().describe(), reply.describe()));
  }
  const auto version = parse_redis_version(reply.str());
  if (!version) {
    throw RedisStreamError(fmt::format("INFO server on {} names no redis_version", connection_.endpoint().describe()));
  }
  if (!version->at_least(5, 0)) {
    throw RedisStreamError(fmt::format(
        "Redis at {} is version {}.{}.{}; streams and consumer groups need Redis 5.0 or newer",
        connection_.endpoint().describe(), version->major, version->minor, version->patch));
  }
  version_ = *version;
  return version_;
}

bool StreamConsumer::ensure_group() {
  RedisReply reply = connection_.command(
      {"XGROUP", "CREATE", options_.stream_key, options_.group, options_.group_start_id, "MKSTREAM"});
  if (!reply.is_error()) return true;
  const std::string_view text = reply.str();
  if (starts_with(text, "BUSYGROUP")) return false;
  if (starts_with(text, "WRONGTYPE")) {
    RedisReply type = connection_.command({"TYPE", options_.stream_key});
    throw ConfigurationError({fmt::format(
        "STREAM_KEY: the key '{}' holds a {}, not a stream; name a stream key or an unused one",
        options_.stream_key, type.is_status() ? std::string(type.str()) : std::string("value of another type"))});
  }
  throw RedisStreamError(fmt::format("XGROUP CREATE of group '{}' on stream '{}' failed: {}", options_.group,
                                     options_.stream_key, text));
}

std::vector<StreamEntry> StreamConsumer::read(std::string_view id, std::size_t count,
                                              std::optional<std::chrono::milliseconds> block) {
  const std::string count_text = std::to_string(count);
  std::vector<std::string_view> argv = {"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT",
                                        count_text};
  std::string block_text;
  std::optional<std::chrono::milliseconds> timeout;
  if (block) {
    block_text = std::to_string(block->count());
    argv.push_back("BLOCK");
    argv.push_back(block_text);
    // The server answers nil when BLOCK runs out; give it room before calling the socket dead.
    timeout = *block + std::chrono::milliseconds(10000);
  }
  argv.insert(argv.end(), {"STREAMS", options_.stream_key, id});
  RedisReply reply = connection_.command(argv, timeout);
  if (reply.is_error()) {
    if (starts_with(reply.str(), "NOGROUP")) {
      throw NoGroupError(fmt::format("XREADGROUP on stream '{}': consumer group '{}' or the stream does not exist",
                                     options_.stream_key, options_.group));
    }
    throw RedisStreamError(fmt::format("XREADGROUP on stream '{}' failed: {}", options_.stream_key, reply.str()));
  }
  if (reply.is_nil()) return {};
  // [[key, [[id, fields], …]]]
  if (!reply.is_array() || reply.size() != 1 || !reply[0].is_array() || reply[0].size() != 2) {
    throw RedisStreamError(fmt::format("XREADGROUP on stream '{}': unexpected reply {}", options_.stream_key,
                                       reply.describe()));
  }
  return parse_entries(reply[0][1], "XREADGROUP");
}

void StreamConsumer::fill_delivery_counts(std::vector<StreamEntry>& entries) {
  if (entries.empty()) return;
  // Entries of ours still in flight may sit in the same ID range: leave room for them.
  const std::string count = std::to_string(entries.size() * 4 + 64);
  RedisReply reply = run({"XPENDING", options_.stream_key, options_.group, entries.front().id, entries.back().id,
                          count, options_.consumer},
                         "XPENDING");
  if (!reply.is_array()) {
    throw RedisStreamError(fmt::format("XPENDING on stream '{}': unexpected reply {}", options_.stream_key,
                                       reply.describe()));
  }
  // Both lists are in ID order: walk them together.
  std::size_t next = 0;
  for (std::size_t i = 0; i < reply.size(); ++i) {
    const RedisReplyView item = reply[i];
    if (!item.is_array() || item.size() != 4) {
      throw RedisStreamError(fmt::format("XPENDING on stream '{}': unexpected item {}", options_.stream_key,
                                         item.describe()));
    }
    const std::string_view id = item[0].str();
    while (next < entries.size() && entries[next].id != id) ++next;
    if (next == entries.size()) break;
    entries[next].deliveries = static_cast<unsigned>(std::max(1LL, item[3].integer()));
  }
}

long long StreamConsumer::ack(const std::vector<std::string>& ids) {
  if (ids.empty()) return 0;
  std::vector<std::string_view> argv;
  argv.reserve(3 + std::min(ids.size(), kMaxIdsPerAck));
  std::size_t commands = 0;
  for (std::size_t start = 0; start < ids.size(); start += kMaxIdsPerAck) {
    argv.assign({"XACK", options_.stream_key, options_.group});
    const std::size_t end = std::min(ids.size(), start + kMaxIdsPerAck);
    for (std::size_t i = start; i < end; ++i) argv.emplace_back(ids[i]);
    connection_.append(argv);
    ++commands;
  }
  long long acknowledged = 0;
  std::string failure;
  for (std::size_t i = 0; i < commands; ++i) {
    RedisReply reply = connection_.read_reply();
    if (reply.is_integer()) {
      acknowledged += reply.integer();
    } else if (failure.empty()) {
      failure = reply.describe();
    }
  }
  if (!failure.empty()) {
    throw RedisStreamError(fmt::format("XACK on stream '{}' failed: {}", options_.stream_key, failure));
  }
  return acknowledged;
}

void StreamConsumer::dead_letter(const StreamEntry& entry, std::string_view reason, unsigned deliveries) {
  const std::string deliveries_text = std::to_string(deliveries);
  const std::string time_text = iso8601_now();
  std::vector<std::string_view> xadd = {"XADD", options_.dead_letter_stream, "*"};
  xadd.reserve(3 + entry.fields.size() * 2 + 10);
  for (const auto& field : entry.fields) {
    xadd.emplace_back(field.name);
    xadd.emplace_back(field.value);
  }
  xadd.insert(xadd.end(), {"dlq-original-id", entry.id, "dlq-stream", options_.stream_key, "dlq-reason", reason,
                           "dlq-deliveries", deliveries_text, "dlq-time", time_text});
  connection_.append({"MULTI"});
  connection_.append(xadd);
  connection_.append({"XACK", options_.stream_key, options_.group, entry.id});
  connection_.append({"EXEC"});
  RedisReply replies[4];
  for (auto& reply : replies) reply = connection_.read_reply();
  if (!replies[3].is_array() || replies[3].size() != 2 || replies[3][0].is_error() || replies[3][1].is_error()) {
    const std::string detail = replies[1].is_error() ? std::string(replies[1].str()) : replies[3].describe();
    throw RedisStreamError(fmt::format("moving entry {} of stream '{}' to dead-letter stream '{}' failed: {}",
                                       entry.id, options_.stream_key, options_.dead_letter_stream, detail));
  }
}

ClaimResult StreamConsumer::claim(std::chrono::milliseconds min_idle, std::string_view cursor, std::size_t count) {
  const bool autoclaim = options_.claim_mode == ClaimMode::AutoClaim ||
                         (options_.claim_mode == ClaimMode::Auto && version_.at_least(6, 2));
  return autoclaim ? claim_with_autoclaim(min_idle, cursor, count) : claim_with_pending(min_idle, cursor, count);
}

ClaimResult StreamConsumer::claim_with_autoclaim(std::chrono::milliseconds min_idle, std::string_view cursor,
                                                 std::size_t count) {
  const std::string idle_text = std::to_string(min_idle.count());
  const std::string count_text = std::to_string(count);
  RedisReply reply = run({"XAUTOCLAIM", options_.stream_key, options_.group, options_.consumer, idle_text, cursor,
                          "COUNT", count_text},
                         "XAUTOCLAIM");
  if (!reply.is_array() || reply.size() < 2 || !reply[0].is_string()) {
    throw RedisStreamError(fmt::format("XAUTOCLAIM on stream '{}': unexpected reply {}", options_.stream_key,
                                       reply.describe()));
  }
  ClaimResult result;
  result.next_cursor = std::string(reply[0].str());
  for (auto& entry : parse_entries(reply[1], "XAUTOCLAIM")) {
    if (entry.deleted) {
      result.deleted_ids.push_back(std::move(entry.id));  // Redis 6.2 answers [id, nil]
    } else {
      result.entries.push_back(std::move(entry));
    }
  }
  // Redis 7 drops deleted entries from the pending list itself and names them here; acking them
  // again is harmless and keeps the count of trimmed entries honest.
  if (reply.size() >= 3 && reply[2].is_array()) {
    for (std::size_t i = 0; i < reply[2].size(); ++i) result.deleted_ids.emplace_back(reply[2][i].str());
  }
  return result;
}

ClaimResult StreamConsumer::claim_with_pending(std::chrono::milliseconds min_idle, std::string_view cursor,
                                               std::size_t count) {
  // Redis 5.0–6.0: XPENDING has no IDLE filter and XAUTOCLAIM does not exist. Scan the pending list
  // from the cursor, keep what is idle long enough, and XCLAIM those IDs.
  const std::string start = cursor == "0-0" ? std::string("-") : std::string(cursor);
  const std::string count_text = std::to_string(count);
  RedisReply pending = run({"XPENDING", options_.stream_key, options_.group, start, "+", count_text}, "XPENDING");
  if (!pending.is_array()) {
    throw RedisStreamError(fmt::format("XPENDING on stream '{}': unexpected reply {}", options_.stream_key,
                                       pending.describe()));
  }
  ClaimResult result;
  std::vector<std::string> idle_ids;
  std::string last_id;
  for (std::size_t i = 0; i < pending.size(); ++i) {
    const RedisReplyView item = pending[i];
    if (!item.is_array() || item.size() != 4) {
      throw RedisStreamError(fmt::format("XPENDING on stream '{}': unexpected item {}", options_.stream_key,
                                         item.describe()));
    }
    last_id = std::string(item[0].str());
    if (!cursor.empty() && cursor != "0-0" && last_id == cursor) continue;  // the cursor itself was done
    if (item[2].integer() >= min_idle.count()) idle_ids.push_back(last_id);
  }
  // A full page means there may be more after the last ID; the next scan starts there (inclusive).
  result.next_cursor = pending.size() >= count && !last_id.empty() && last_id != cursor ? last_id : "0-0";
  if (idle_ids.empty()) return result;

  const std::string idle_text = std::to_string(min_idle.count());
  std::vector<std::string_view> argv = {"XCLAIM", options_.stream_key, options_.group, options_.consumer,
                                        idle_text};
  for (const auto& id : idle_ids) argv.emplace_back(id);
  RedisReply claimed = run(argv, "XCLAIM");
  if (!claimed.is_array()) {
    throw RedisStreamError(fmt::format("XCLAIM on stream '{}': unexpected reply {}", options_.stream_key,
                                       claimed.describe()));
  }
  // Before Redis 7, XCLAIM answers nil in the place of an entry that was deleted from the stream (it
  // stays pending, now ours); Redis 7 drops such IDs from the pending list itself.
  // IDs that stopped being idle are left out of the reply, shifting the rest: read the nils only when
  // every ID came back, so that an ID is never acked by mistake.
  if (claimed.size() == idle_ids.size()) {
    for (std::size_t i = 0; i < claimed.size(); ++i) {
      if (claimed[i].is_nil()) result.deleted_ids.push_back(idle_ids[i]);
    }
  }
  for (auto& entry : parse_entries(claimed, "XCLAIM")) {
    if (entry.deleted) {
      result.deleted_ids.push_back(std::move(entry.id));
    } else {
      result.entries.push_back(std::move(entry));
    }
  }
  return result;
}

}  // namespace connector
