#include "redis/stream_consumer.hpp"

#include <charconv>
#include <chrono>
#include <utility>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace connector {
namespace {
constexpr std::size_t kMaxIdsPerAck = 1000;
// A blocking read's reply comes when BLOCK runs out; the socket gets this much longer before it is
// called dead.
constexpr std::chrono::milliseconds kBlockReplySlack{10000};

/// UTC with milliseconds, "2026-11-27T18:04:03.537Z" (the dlq-time field). fmt 9 formats a
/// time_point in local time and without the milliseconds, hence gmtime and the explicit fraction.
std::string iso8601_now() {
  using namespace std::chrono;
  const auto now = floor<milliseconds>(system_clock::now());
  return fmt::format("{:%FT%T}.{:03}Z", fmt::gmtime(system_clock::to_time_t(now)),
                     (now.time_since_epoch() % seconds(1)).count());
}

template <typename Number>
bool parse_number(std::string_view text, Number& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc{} && end == text.data() + text.size();
}
}  // namespace

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

namespace {
RedisConnectionOptions with_role(RedisConnectionOptions redis, const char* role) {
  if (!redis.client_name.empty()) redis.client_name += role;
  return redis;
}
}  // namespace

PipelineStreams::PipelineStreams(const RedisConnectionOptions& redis, const StreamConsumerOptions& stream)
    : reader_connection(with_role(redis, ":reader")),
      reader(reader_connection, stream),
      acker_connection(with_role(redis, ":acker")),
      acker(acker_connection, stream) {}

StreamConsumer::StreamConsumer(RedisConnection& connection, StreamConsumerOptions options)
    : connection_(connection),
      options_(std::move(options)),
      read_reply_(StreamReplyShape::Streams, "XREADGROUP", options_.stream_key),
      range_reply_(StreamReplyShape::Entries, "XRANGE", options_.stream_key) {
  if (options_.dead_letter_stream.empty()) options_.dead_letter_stream = options_.stream_key + ":dead-letter";
}

RedisReply StreamConsumer::run(const std::vector<std::string_view>& argv, std::string_view what) {
  RedisReply reply = connection().command(argv);
  if (reply.is_error()) throw_reply_error(reply.str(), what);
  return reply;
}

RedisStreamError StreamConsumer::unexpected(std::string_view command, std::string_view part,
                                            RedisReplyView reply) const {
  return RedisStreamError(
      fmt::format("{} on stream '{}': unexpected {} {}", command, options_.stream_key, part, reply.describe()));
}

void StreamConsumer::throw_reply_error(std::string_view text, std::string_view what) {
  // A blocking XREADGROUP answers UNBLOCKED when the stream is deleted under it: the group went with it.
  const RedisReplyCode code = redis_reply_code(text);
  if (code == RedisReplyCode::NoGroup || code == RedisReplyCode::Unblocked) {
    throw RedisStreamError(
        fmt::format("{} on stream '{}': consumer group '{}' or the stream does not exist ({})", what,
                    options_.stream_key, options_.group, text),
        code);
  }
  if (code == RedisReplyCode::WrongType) {
    RedisReply type = connection().command({"TYPE", options_.stream_key});
    throw ConfigurationError({fmt::format(
        "STREAM_KEY: the key '{}' holds a {}, not a stream ({} failed); name a stream key or an unused one",
        options_.stream_key,
        type.is_status() ? std::string(type.str()) : std::string("value of another type"), what)});
  }
  throw RedisStreamError(fmt::format("{} on stream '{}' failed: {}", what, options_.stream_key, text), code);
}

RedisVersion StreamConsumer::check_server() {
  RedisReply reply = connection().command({"INFO", "server"});
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

bool StreamConsumer::ensure_group(std::string_view start_id) {
  RedisReply reply =
      connection().command({"XGROUP", "CREATE", options_.stream_key, options_.group, start_id, "MKSTREAM"});
  if (!reply.is_error()) return true;
  const RedisReplyCode code = redis_reply_code(reply.str());
  if (code == RedisReplyCode::BusyGroup) return false;
  // Under maxmemory with noeviction, Redis refuses XGROUP CREATE before it looks for the group; reading
  // and acking still work, so an existing group is all that is needed.
  if (code == RedisReplyCode::Oom && group_exists()) return false;
  throw_reply_error(reply.str(), fmt::format("XGROUP CREATE of group '{}'", options_.group));
}

bool StreamConsumer::group_exists() {
  RedisReply groups = connection().command({"XINFO", "GROUPS", options_.stream_key});
  if (!groups.is_array()) return false;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const RedisReplyView group = groups[i];
    for (std::size_t f = 0; group.is_array() && f + 1 < group.size(); f += 2) {
      if (group[f].str() == "name" && group[f + 1].str() == options_.group) return true;
    }
  }
  return false;
}

std::vector<std::string_view> StreamConsumer::read_command(std::string_view id, const std::string& count_text,
                                                           const std::string& block_text) const {
  std::vector<std::string_view> argv = {"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT",
                                        count_text};
  if (!block_text.empty()) argv.insert(argv.end(), {"BLOCK", block_text});
  argv.insert(argv.end(), {"STREAMS", options_.stream_key, id});
  return argv;
}

std::vector<StreamEntry> StreamConsumer::read(std::string_view id, std::size_t count,
                                              std::optional<std::chrono::milliseconds> block,
                                              const std::function<bool()>& may_read_ahead) {
  // A read-ahead that found nothing answers an empty batch without waiting: the caller's next read
  // blocks, after it has had a chance to stop.
  if (!(id == ">" && take_read_ahead(count))) {
    const std::string count_text = std::to_string(count);
    const std::string block_text = block ? std::to_string(block->count()) : std::string();
    // The server answers nil when BLOCK runs out; give it room before calling the socket dead.
    const auto timeout = block ? std::optional(*block + kBlockReplySlack) : std::nullopt;
    connection().append(read_command(id, count_text, block_text));
    read_reply_.clear();
    connection_.read_reply(read_reply_.builder(), timeout);
  }
  check_read_reply();
  if (read_reply_.is_nil()) return {};
  // Sent before this batch is handed on, so that Redis works on the next one meanwhile.
  if (may_read_ahead && id == ">" && read_reply_.delivered() == count && may_read_ahead()) send_read_ahead(count);
  return std::move(read_reply_.entries());
}

std::vector<StreamEntry> StreamConsumer::take_delivered_read_ahead(std::size_t count) {
  if (!take_read_ahead(count)) return {};
  check_read_reply();
  return std::move(read_reply_.entries());  // none for a nil reply
}

void StreamConsumer::check_read_reply() {
  if (!read_reply_.error().empty()) throw_reply_error(std::string(read_reply_.error()), "XREADGROUP");
  if (!read_reply_.fault().empty()) throw RedisStreamError(read_reply_.fault());
}

bool StreamConsumer::take_read_ahead(std::size_t count) {
  const std::size_t sent = std::exchange(read_ahead_count_, 0);
  if (sent == 0 || !connection_.connected() || connection_.pending_replies() != 1) return false;
  read_reply_.clear();
  connection_.read_reply(read_reply_.builder());
  if (sent == count) return true;
  read_reply_.clear();  // a read of another size: its entries stay pending for this consumer
  return false;
}

void StreamConsumer::send_read_ahead(std::size_t count) {
  const std::string count_text = std::to_string(count);
  connection_.append(read_command(">", count_text, {}));
  connection_.flush();
  read_ahead_count_ = count;
}

RedisConnection& StreamConsumer::connection() {
  if (read_ahead_count_ != 0) take_read_ahead(0);  // no read has COUNT 0: the reply is dropped
  return connection_;
}

std::vector<StreamConsumer::Pending> StreamConsumer::pending_page(std::string_view start, std::size_t count,
                                                                  std::string_view consumer,
                                                                  std::vector<long long>* idle_ms) {
  const std::string count_text = std::to_string(count);
  std::vector<std::string_view> argv = {"XPENDING", options_.stream_key, options_.group, start,
                                        "+",        count_text};
  if (!consumer.empty()) argv.push_back(consumer);
  RedisReply reply = run(argv, "XPENDING");
  if (!reply.is_array()) {
    throw unexpected("XPENDING", "reply", reply);
  }
  std::vector<Pending> page;
  page.reserve(reply.size());
  for (std::size_t i = 0; i < reply.size(); ++i) {
    const RedisReplyView item = reply[i];
    if (!item.is_array() || item.size() != 4 || !item[0].is_string() || !item[2].is_integer() ||
        !item[3].is_integer()) {
      throw unexpected("XPENDING", "item", item);
    }
    page.push_back({std::string(item[0].str()), static_cast<unsigned>(std::max(1LL, item[3].integer()))});
    if (idle_ms != nullptr) idle_ms->push_back(item[2].integer());
  }
  return page;
}

std::vector<std::optional<unsigned>> StreamConsumer::delivery_counts(const std::vector<std::string>& ids) {
  for (const auto& id : ids)
    connection().append({"XPENDING", options_.stream_key, options_.group, id, id, "1"});
  std::vector<std::optional<unsigned>> counts;
  counts.reserve(ids.size());
  std::string failure;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    RedisReply reply = connection().read_reply();
    if (reply.is_array() && reply.size() == 1 && reply[0].is_array() && reply[0].size() == 4 &&
        reply[0][3].is_integer()) {
      counts.emplace_back(static_cast<unsigned>(std::max(1LL, reply[0][3].integer())));
    } else if (reply.is_array() && reply.size() == 0) {
      counts.emplace_back();  // acked meanwhile
    } else if (failure.empty()) {
      failure = reply.is_error() ? std::string(reply.str()) : reply.describe();
    }
  }
  if (!failure.empty()) throw_reply_error(failure, "XPENDING");
  return counts;
}

std::vector<StreamEntry> StreamConsumer::fetch(std::vector<Pending> pending) {
  for (const auto& item : pending) connection().append({"XRANGE", options_.stream_key, item.id, item.id});
  std::vector<StreamEntry> entries;
  entries.reserve(pending.size());
  std::string failure;
  for (auto& item : pending) {
    // Every reply is read even after a bad one: the connection must stay in step with its commands.
    range_reply_.clear();
    connection_.read_reply(range_reply_.builder());
    const std::string& refusal = range_reply_.error().empty() ? range_reply_.fault() : range_reply_.error();
    if (!refusal.empty()) {
      if (failure.empty()) failure = refusal;
      continue;
    }
    std::vector<StreamEntry>& found = range_reply_.entries();
    StreamEntry& entry = entries.emplace_back();
    if (found.empty()) {
      entry.id = std::move(item.id);
      entry.deleted = true;  // trimmed from the stream while pending: nothing left to deliver
    } else {
      entry = std::move(found.front());
    }
    entry.deliveries = item.deliveries;
  }
  if (!failure.empty()) throw_reply_error(failure, "XRANGE");
  return entries;
}

std::vector<StreamEntry> StreamConsumer::read_own_pending(std::string_view after, std::size_t count) {
  // The start of XPENDING's range is inclusive (the exclusive "(" form needs Redis 6.2): ask for one
  // more and drop `after` itself.
  const bool from_start = after == "0";
  auto page = pending_page(from_start ? std::string_view("-") : after, count + (from_start ? 0 : 1),
                           options_.consumer);
  if (!from_start && !page.empty() && page.front().id == after) page.erase(page.begin());
  if (page.size() > count) page.resize(count);
  return fetch(std::move(page));
}

long long StreamConsumer::ack(const std::vector<std::string_view>& ids) {
  if (ids.empty()) return 0;
  std::vector<std::string_view> argv;
  argv.reserve(3 + std::min(ids.size(), kMaxIdsPerAck));
  std::size_t commands = 0;
  for (std::size_t start = 0; start < ids.size(); start += kMaxIdsPerAck) {
    argv.assign({"XACK", options_.stream_key, options_.group});
    const std::size_t end = std::min(ids.size(), start + kMaxIdsPerAck);
    for (std::size_t i = start; i < end; ++i) argv.emplace_back(ids[i]);
    connection().append(argv);
    ++commands;
  }
  long long acknowledged = 0;
  std::string failure;
  for (std::size_t i = 0; i < commands; ++i) {
    RedisReply reply = connection().read_reply();
    if (reply.is_integer()) {
      acknowledged += reply.integer();
    } else if (failure.empty()) {
      failure = reply.is_error() ? std::string(reply.str()) : reply.describe();
    }
  }
  if (!failure.empty()) throw_reply_error(failure, "XACK");
  return acknowledged;
}

std::vector<std::string> StreamConsumer::dead_letter(const std::vector<DeadLetter>& entries) {
  // XADD first, and XACK only the entries whose XADD answered with an ID. MULTI/EXEC does not do this:
  // Redis runs every queued command even when one fails, so a refused XADD (WRONGTYPE, OOM) was acked
  // anyway. A Lua script would need EVAL, which ACLs and managed Redis offerings often forbid. The cost
  // of two steps: a crash between them leaves the entry pending, and it is dead-lettered again later
  // (at least once; consumers of the dead-letter stream de-duplicate by dlq-original-id).
  const std::string time_text = iso8601_now();
  std::vector<std::string> deliveries(entries.size());
  std::vector<std::string_view> xadd;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const StreamEntry& entry = *entries[i].entry;
    deliveries[i] = std::to_string(entries[i].deliveries);
    xadd.assign({"XADD", options_.dead_letter_stream, "*"});
    for (const auto& field : entry.fields) {
      xadd.emplace_back(field.name);
      xadd.emplace_back(field.value);
    }
    xadd.insert(xadd.end(), {"dlq-original-id", entry.id, "dlq-stream", options_.stream_key, "dlq-reason",
                             entries[i].reason, "dlq-deliveries", deliveries[i], "dlq-time", time_text});
    connection().append(xadd);
  }
  std::vector<std::string> failures(entries.size());
  std::vector<std::string_view> written;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    RedisReply reply = connection().read_reply();
    if (reply.is_string()) {
      written.emplace_back(entries[i].entry->id);
    } else {
      failures[i] = fmt::format("XADD to dead-letter stream '{}' failed: {}", options_.dead_letter_stream,
                                reply.is_error() ? std::string(reply.str()) : reply.describe());
    }
  }
  ack(written);
  return failures;
}

namespace {
/// Claimed entries go to `result`: those trimmed from the stream while pending as IDs to ack.
void add_fetched(std::vector<StreamEntry> fetched, ClaimResult& result) {
  for (auto& entry : fetched) {
    if (entry.deleted) {
      result.deleted_ids.push_back(std::move(entry.id));
    } else {
      result.entries.push_back(std::move(entry));
    }
  }
}
}  // namespace

ClaimResult StreamConsumer::claim(std::chrono::milliseconds min_idle, std::string_view cursor,
                                  std::size_t count, const std::function<bool(std::string_view)>& skip) {
  const bool autoclaim = options_.claim_mode == ClaimMode::AutoClaim ||
                         (options_.claim_mode == ClaimMode::Auto && version_.at_least(6, 2));
  return autoclaim ? claim_with_autoclaim(min_idle, cursor, count, skip)
                   : claim_with_pending(min_idle, cursor, count, skip);
}

ClaimResult StreamConsumer::claim_with_autoclaim(std::chrono::milliseconds min_idle, std::string_view cursor,
                                                 std::size_t count,
                                                 const std::function<bool(std::string_view)>& skip) {
  // JUSTID: XAUTOCLAIM without it adds one to each entry's delivery count, so that claims during an
  // output outage would push healthy entries over MAX_DELIVERY_ATTEMPTS. Entries of this instance that
  // are in flight may be in the reply (they are already ours; JUSTID leaves their counts alone): skip them.
  const std::string idle_text = std::to_string(min_idle.count());
  const std::string count_text = std::to_string(count);
  RedisReply reply = run({"XAUTOCLAIM", options_.stream_key, options_.group, options_.consumer, idle_text,
                          cursor, "COUNT", count_text, "JUSTID"},
                         "XAUTOCLAIM");
  if (!reply.is_array() || reply.size() < 2 || !reply[0].is_string() || !reply[1].is_array()) {
    throw unexpected("XAUTOCLAIM", "reply", reply);
  }
  ClaimResult result;
  result.next_cursor = std::string(reply[0].str());
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < reply[1].size(); ++i) {
    if (!reply[1][i].is_string()) {
      throw unexpected("XAUTOCLAIM", "ID", reply[1][i]);
    }
    if (!skip(reply[1][i].str())) ids.emplace_back(reply[1][i].str());
  }
  // Redis 7 drops deleted entries from the pending list itself and names them here; acking them
  // again is harmless and keeps the count of trimmed entries honest.
  if (reply.size() >= 3 && reply[2].is_array()) {
    for (std::size_t i = 0; i < reply[2].size(); ++i) result.deleted_ids.emplace_back(reply[2][i].str());
  }
  const auto counts = delivery_counts(ids);
  std::vector<Pending> claimed;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (counts[i]) claimed.push_back({std::move(ids[i]), *counts[i]});
  }
  add_fetched(fetch(std::move(claimed)), result);
  return result;
}

ClaimResult StreamConsumer::claim_with_pending(std::chrono::milliseconds min_idle, std::string_view cursor,
                                               std::size_t count,
                                               const std::function<bool(std::string_view)>& skip) {
  // Redis 5.0–6.0: XPENDING has no IDLE filter and XAUTOCLAIM does not exist. Scan the pending list
  // from the cursor, keep what is idle long enough and not ours in flight, and XCLAIM those IDs with
  // JUSTID (no delivery is added; XCLAIM's min-idle makes a concurrent claimer win cleanly).
  std::vector<long long> idle;
  auto page = pending_page(cursor == "0-0" ? std::string_view("-") : cursor, count, {}, &idle);
  ClaimResult result;
  std::vector<Pending> candidates;
  for (std::size_t i = 0; i < page.size(); ++i) {
    if (cursor != "0-0" && page[i].id == cursor) continue;  // the cursor itself was done
    if (idle[i] >= min_idle.count() && !skip(page[i].id)) candidates.push_back(page[i]);
  }
  // A full page means there may be more after the last ID; the next scan starts there (inclusive).
  result.next_cursor =
      page.size() >= count && !page.empty() && page.back().id != cursor ? page.back().id : std::string("0-0");
  if (candidates.empty()) return result;

  const std::string idle_text = std::to_string(min_idle.count());
  std::vector<std::string_view> argv = {"XCLAIM", options_.stream_key, options_.group, options_.consumer,
                                        idle_text};
  for (const auto& candidate : candidates) argv.emplace_back(candidate.id);
  argv.emplace_back("JUSTID");
  RedisReply claimed = run(argv, "XCLAIM");
  if (!claimed.is_array()) {
    throw unexpected("XCLAIM", "reply", claimed);
  }
  // IDs that stopped being idle (another consumer took them) are left out of the reply.
  std::vector<Pending> taken;
  std::size_t next = 0;
  for (std::size_t i = 0; i < claimed.size(); ++i) {
    if (!claimed[i].is_string()) continue;
    while (next < candidates.size() && candidates[next].id != claimed[i].str()) ++next;
    if (next < candidates.size()) taken.push_back(candidates[next]);
  }
  add_fetched(fetch(std::move(taken)), result);
  return result;
}

void StreamConsumer::set_delivery_counts(const std::vector<std::pair<std::string, unsigned>>& counts) {
  std::vector<std::string> texts;
  texts.reserve(counts.size());
  for (const auto& [id, deliveries] : counts) {
    texts.push_back(std::to_string(deliveries));
    connection().append({"XCLAIM", options_.stream_key, options_.group, options_.consumer, "0", id,
                        "RETRYCOUNT", texts.back(), "JUSTID"});
  }
  std::string failure;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    RedisReply reply = connection().read_reply();
    if (reply.is_error() && failure.empty()) failure = reply.str();
  }
  if (!failure.empty()) throw_reply_error(failure, "XCLAIM RETRYCOUNT");
}

}  // namespace connector
