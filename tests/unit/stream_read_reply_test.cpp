// Stream replies read straight into entries, in both shapes (XREADGROUP's streams array and XRANGE's
// bare entries array): the entries must come out the same however the bytes arrive, and a reply of
// another shape must be consumed whole with a clear fault naming the command.
#include "redis/stream_read_reply.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <string>
#include <string_view>

namespace connector {
namespace {

struct ReaderFree {
  void operator()(redisReader* reader) const { redisReaderFree(reader); }
};
using Reader = std::unique_ptr<redisReader, ReaderFree>;

/// A RESP reader whose replies are read into one StreamReadReply, fed as a socket would feed it.
class BuilderReader {
 public:
  explicit BuilderReader(StreamReplyShape shape = StreamReplyShape::Streams)
      : reply_(shape, shape == StreamReplyShape::Streams ? "XREADGROUP" : "XRANGE", "s"),
        reader_(redisReaderCreate()) {
    const ReplyBuilder builder = reply_.builder();
    reader_->fn = builder.functions;
    reader_->privdata = builder.privdata;
  }

  /// Feeds `resp` in pieces of `step` bytes until one reply is complete; the rest stays buffered.
  StreamReadReply& read(std::string_view resp, std::size_t step = 1 << 20) {
    reply_.clear();
    void* raw = nullptr;
    EXPECT_EQ(redisReaderGetReply(reader_.get(), &raw), REDIS_OK) << reader_->errstr;
    for (std::size_t at = 0; raw == nullptr && at < resp.size(); at += step) {
      EXPECT_EQ(redisReaderFeed(reader_.get(), resp.data() + at, std::min(step, resp.size() - at)), REDIS_OK);
      EXPECT_EQ(redisReaderGetReply(reader_.get(), &raw), REDIS_OK) << reader_->errstr;
    }
    EXPECT_NE(raw, nullptr) << "incomplete RESP in the test";
    return reply_;
  }

 private:
  StreamReadReply reply_;
  Reader reader_;
};

std::string dump(const std::vector<StreamEntry>& entries) {
  std::string out;
  for (const auto& entry : entries) {
    out += entry.id + (entry.deleted ? " deleted{" : "{");
    for (const auto& field : entry.fields) {
      out += std::to_string(field.name.size()) + ":" + std::string(field.name) + "=" +
             std::to_string(field.value.size()) + ":" + std::string(field.value) + ",";
    }
    out += "}\n";
  }
  return out;
}

std::string bulk(const std::string& text) { return "$" + std::to_string(text.size()) + "\r\n" + text + "\r\n"; }

std::string xreadgroup_reply(const std::string& entries_resp, std::size_t count) {
  return "*1\r\n*2\r\n" + bulk("s") + "*" + std::to_string(count) + "\r\n" + entries_resp;
}

TEST(stream_read_reply_test, entries_are_read_whole_however_the_bytes_arrive) {
  const std::string binary("a\0b\r\n\xff", 6);
  const std::string large(100000, 'x');
  const std::string entries = "*2\r\n" + bulk("1700000000000-0") + "*4\r\n" + bulk("name") + bulk(binary) +
                              bulk("") + bulk("") +                             // binary and empty
                              "*-1\r\n" +                                       // an item Redis cannot name
                              "*2\r\n" + bulk("1700000000000-1") + "$-1\r\n" +  // trimmed while pending
                              "*2\r\n" + bulk("1700000000000-2") + "*2\r\n+status\r\n" + bulk(large) +
                              "*2\r\n" + bulk("1700000000000-3") + "*0\r\n";
  const std::string expected = "1700000000000-0{4:name=6:" + binary + ",0:=0:,}\n" +
                               "1700000000000-1 deleted{}\n" + "1700000000000-2{6:status=100000:" + large +
                               ",}\n" + "1700000000000-3{}\n";
  const std::pair<StreamReplyShape, std::string> replies[] = {
      {StreamReplyShape::Streams, xreadgroup_reply(entries, 5)},
      {StreamReplyShape::Entries, "*5\r\n" + entries},
  };
  for (const auto& [shape, resp] : replies) {
    for (const std::size_t step : {resp.size(), std::size_t{1}, std::size_t{7}}) {
      BuilderReader reader(shape);
      StreamReadReply& reply = reader.read(resp, step);
      EXPECT_EQ(reply.fault(), "") << "step " << step;
      EXPECT_EQ(reply.error(), "");
      EXPECT_FALSE(reply.is_nil());
      EXPECT_EQ(reply.delivered(), 5u);
      EXPECT_EQ(dump(reply.entries()), expected) << "step " << step;
    }
  }
}

TEST(stream_read_reply_test, nil_error_and_no_entries_are_told_apart) {
  BuilderReader reader;
  EXPECT_TRUE(reader.read("*-1\r\n").is_nil());
  const StreamReadReply& error = reader.read("-NOGROUP No such key 's' or consumer group 'g'\r\n");
  EXPECT_FALSE(error.is_nil());
  EXPECT_EQ(error.error(), "NOGROUP No such key 's' or consumer group 'g'");
  EXPECT_EQ(error.fault(), "");
  EXPECT_EQ(reader.read("-\r\n").error(), "(an error reply without text)");
  const StreamReadReply& nothing = reader.read(xreadgroup_reply("", 0));
  EXPECT_FALSE(nothing.is_nil());
  EXPECT_EQ(nothing.error(), "");
  EXPECT_EQ(nothing.fault(), "");
  EXPECT_EQ(nothing.delivered(), 0u);
  EXPECT_TRUE(reader.read("*1\r\n*2\r\n" + bulk("s") + "*-1\r\n").entries().empty());
}

TEST(stream_read_reply_test, a_reply_of_another_shape_is_consumed_whole_and_named) {
  const std::string good = xreadgroup_reply("*2\r\n" + bulk("9-9") + "*2\r\n" + bulk("f") + bulk("v"), 1);
  const std::pair<std::string, std::string> cases[] = {
      {"+OK\r\n", "XREADGROUP on stream 's': unexpected reply status reply: OK"},
      {"*2\r\n:1\r\n:2\r\n", "XREADGROUP on stream 's': unexpected reply array of 2"},
      {"*1\r\n*3\r\n" + bulk("s") + "*0\r\n*0\r\n", "unexpected reply, an array of 1 holding array of 3"},
      {"*1\r\n*2\r\n" + bulk("s") + ":5\r\n", "XREADGROUP: expected an array of entries, got integer 5"},
      {xreadgroup_reply("*2\r\n:1\r\n*0\r\n", 1), "XREADGROUP: expected [id, fields] for entry 0"},
      {xreadgroup_reply("*2\r\n" + bulk("1-0") + "*0\r\n" + "*3\r\n" + bulk("1-1") + "*0\r\n*0\r\n", 2),
       "XREADGROUP: expected [id, fields] for entry 1, got array of 3"},
      {xreadgroup_reply("*2\r\n" + bulk("1-1") + "*1\r\n" + bulk("f"), 1),
       "XREADGROUP: entry 1-1 has malformed fields (array of 1)"},
      {xreadgroup_reply("*2\r\n" + bulk("1-1") + "*2\r\n" + bulk("f") + ":7\r\n", 1),
       "XREADGROUP: entry 1-1 has malformed fields (item 1 is integer 7)"},
      {xreadgroup_reply("*2\r\n" + bulk("1-1") + "*2\r\n*1\r\n*1\r\n:1\r\n" + bulk("v"), 1),
       "XREADGROUP: entry 1-1 has malformed fields (item 0 is array of 1)"},
  };
  for (const auto& [resp, fault] : cases) {
    BuilderReader reader;
    // The bad reply and a good one behind it in the buffer: the good one must come out whole.
    const StreamReadReply& bad = reader.read(resp + good);
    EXPECT_NE(bad.fault().find(fault), std::string::npos) << bad.fault() << "\nexpected: " << fault;
    StreamReadReply& next = reader.read("");
    EXPECT_EQ(next.fault(), "") << resp;
    EXPECT_EQ(dump(next.entries()), "9-9{1:f=1:v,}\n") << resp;
  }
}

TEST(stream_read_reply_test, an_entries_reply_tells_nil_error_and_no_entries_apart) {
  BuilderReader reader(StreamReplyShape::Entries);
  EXPECT_TRUE(reader.read("*-1\r\n").is_nil());
  const StreamReadReply& error = reader.read("-NOGROUP No such key 's' or consumer group 'g'\r\n");
  EXPECT_EQ(error.error(), "NOGROUP No such key 's' or consumer group 'g'");
  EXPECT_EQ(error.fault(), "");
  const StreamReadReply& nothing = reader.read("*0\r\n");
  EXPECT_FALSE(nothing.is_nil());
  EXPECT_EQ(nothing.error(), "");
  EXPECT_EQ(nothing.fault(), "");
  EXPECT_TRUE(reader.read("*0\r\n").entries().empty());
  // XRANGE of one ID whose entry was trimmed while pending, as Redis answers it: no entry at all.
  EXPECT_TRUE(reader.read("*1\r\n*-1\r\n").entries().empty());
}

TEST(stream_read_reply_test, an_entries_reply_of_another_shape_is_consumed_whole_and_names_the_command) {
  const std::string good = "*1\r\n*2\r\n" + bulk("9-9") + "*2\r\n" + bulk("f") + bulk("v");
  const std::pair<std::string, std::string> cases[] = {
      {":5\r\n", "XRANGE: expected an array of entries, got integer 5"},
      {"+OK\r\n", "XRANGE: expected an array of entries, got status reply: OK"},
      {"*1\r\n*1\r\n" + bulk("1-0"), "XRANGE: expected [id, fields] for entry 0, got array of 1"},
      {"*2\r\n*-1\r\n*2\r\n:1\r\n*0\r\n",
       "XRANGE: expected [id, fields] for entry 1, got array of 2 whose id is integer 1"},
      {"*1\r\n*2\r\n" + bulk("1-0") + "*1\r\n" + bulk("a"),
       "XRANGE: entry 1-0 has malformed fields (array of 1)"},
      {"*1\r\n*2\r\n" + bulk("1-0") + ":3\r\n", "XRANGE: entry 1-0 has malformed fields (integer 3)"},
      {"*1\r\n*2\r\n" + bulk("1-0") + "*2\r\n" + bulk("f") + "*0\r\n",
       "XRANGE: entry 1-0 has malformed fields (item 1 is array of 0)"},
  };
  for (const auto& [resp, fault] : cases) {
    BuilderReader reader(StreamReplyShape::Entries);
    const StreamReadReply& bad = reader.read(resp + good);
    EXPECT_EQ(bad.fault(), fault) << resp;
    StreamReadReply& next = reader.read("");
    EXPECT_EQ(next.fault(), "") << resp;
    EXPECT_EQ(dump(next.entries()), "9-9{1:f=1:v,}\n") << resp;
  }
}

TEST(stream_read_reply_test, an_announced_count_is_not_taken_on_trust) {
  // A hundred million entries announced and one sent (whose fields announce as many): nothing near
  // 1e8 x sizeof(StreamEntry) may be reserved before the elements arrive.
  StreamReadReply reply(StreamReplyShape::Streams, "XREADGROUP", "s");
  Reader reader(redisReaderCreate());
  reader->fn = reply.builder().functions;
  reader->privdata = reply.builder().privdata;
  const std::string resp =
      "*1\r\n*2\r\n" + bulk("s") + "*100000000\r\n*2\r\n" + bulk("1-1") + "*100000000\r\n" + bulk("f");
  ASSERT_EQ(redisReaderFeed(reader.get(), resp.data(), resp.size()), REDIS_OK);
  void* raw = nullptr;
  ASSERT_EQ(redisReaderGetReply(reader.get(), &raw), REDIS_OK) << reader->errstr;
  ASSERT_EQ(raw, nullptr);  // incomplete
  ASSERT_EQ(reply.entries().size(), 1u);
  EXPECT_LE(reply.entries().capacity(), std::size_t{1} << 16);
  EXPECT_LE(reply.entries()[0].fields.capacity(), std::size_t{1} << 16);
}

}  // namespace
}  // namespace connector
