// BatchFormatStamp and MaxFrameHeadroom on hand-written frames, on the bytes Proton 0.37 writes (copied
// from a PN_TRACE_RAW capture), and between a real Proton client and server joined in memory.
#include "eventhubs/batch_format_stamp.hpp"

#include <gtest/gtest.h>
#include <proton/codec.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/link.h>
#include <proton/sasl.h>
#include <proton/session.h>
#include <proton/transport.h>

#include <cstring>
#include <initializer_list>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/errors.hpp"

namespace connector {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int value : values) out.push_back(static_cast<char>(value));
  return out;
}

/// A sink's delivery tag as it goes on the wire: the number's own bytes.
std::string tag_bytes(std::uint64_t tag) {
  std::string out(sizeof tag, '\0');
  std::memcpy(out.data(), &tag, sizeof tag);
  return out;
}

std::string u32(std::uint32_t value) {
  return bytes({static_cast<int>(value >> 24 & 0xff), static_cast<int>(value >> 16 & 0xff),
                static_cast<int>(value >> 8 & 0xff), static_cast<int>(value & 0xff)});
}

/// An AMQP frame (doff 2, channel 0) around `body`.
std::string frame(const std::string& body, int type = 0) {
  return u32(static_cast<std::uint32_t>(8 + body.size())) + bytes({2, type, 0, 0}) + body;
}

/// A transfer performative whose list8 holds `count` fields encoded as `fields`.
std::string transfer(const std::string& fields, int count) {
  return bytes({0x00, 0x53, 0x14, 0xc0, static_cast<int>(fields.size() + 1), count}) + fields;
}

const std::string kSaslHeader = bytes({'A', 'M', 'Q', 'P', 3, 1, 0, 0});
const std::string kAmqpHeader = bytes({'A', 'M', 'Q', 'P', 0, 1, 0, 0});
const std::uint64_t kBatchTag = 6 | kBatchTagBit;
const std::string kPayload(10, 'x');
const std::string kBatchFormat = bytes({0x70, 0x80, 0x01, 0x37, 0x00});

/// What a new Editor makes of `in`, given in one piece or one byte at a time.
template <class Editor>
std::string edited(const std::string& in, bool byte_by_byte = false) {
  Editor editor;
  std::string out;
  if (byte_by_byte) {
    for (const char& c : in) editor.process(std::string_view(&c, 1), out);
  } else {
    editor.process(in, out);
  }
  return out;
}

std::string stamp(const std::string& in) { return edited<BatchFormatStamp>(in); }
std::string stamp_byte_by_byte(const std::string& in) { return edited<BatchFormatStamp>(in, true); }

/// The message-format field of a transfer frame, decoded by Proton's own codec; nullopt when the
/// performative does not decode to a transfer with that field.
std::optional<std::uint32_t> decoded_format(const std::string& transfer_frame) {
  const std::size_t body = static_cast<unsigned char>(transfer_frame[4]) * 4;
  pn_data_t* data = pn_data(0);
  std::optional<std::uint32_t> format;
  if (pn_data_decode(data, transfer_frame.data() + body, transfer_frame.size() - body) > 0) {
    pn_data_rewind(data);
    if (pn_data_next(data) && pn_data_type(data) == PN_DESCRIBED && pn_data_enter(data) &&
        pn_data_next(data) && pn_data_get_ulong(data) == 0x14 && pn_data_next(data) &&
        pn_data_type(data) == PN_LIST && pn_data_enter(data)) {
      for (int field = 0; field < 4 && pn_data_next(data); ++field) {
        if (field == 3 && pn_data_type(data) == PN_UINT) format = pn_data_get_uint(data);
      }
    }
  }
  pn_data_free(data);
  return format;
}

/// The frames of an AMQP byte stream after its protocol headers.
std::vector<std::string> frames(std::string_view stream) {
  std::vector<std::string> out;
  while (stream.size() >= 8) {
    if (stream.substr(0, 4) == "AMQP") {
      stream.remove_prefix(8);
      continue;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(stream.data());
    const std::size_t size =
        std::size_t{p[0]} << 24 | std::size_t{p[1]} << 16 | std::size_t{p[2]} << 8 | p[3];
    out.emplace_back(stream.substr(0, size));
    stream.remove_prefix(std::min(size, stream.size()));
  }
  return out;
}

bool is_transfer(const std::string& frame) {
  return frame.size() > 10 && frame.substr(8, 3) == bytes({0, 0x53, 0x14});
}

// ============================================================ what passes

TEST(batch_format_stamp_test, protocol_headers_and_sasl_frames_pass_unchanged) {
  // Proton's sasl-init for ANONYMOUS, between the two protocol headers.
  const std::string sasl_init =
      frame(bytes({0x00, 0x53, 0x41, 0xc0, 0x17, 0x02, 0xa3, 0x09, 'A', 'N', 'O', 'N', 'Y', 'M',
                   'O',  'U',  'S',  0xa0, 0x09, 'a',  'n',  'o',  'n', 'y', 'm', 'o', 'u', 's'}),
            1);
  const std::string in = kSaslHeader + sasl_init + kAmqpHeader;
  EXPECT_EQ(stamp(in), in);
  EXPECT_EQ(stamp_byte_by_byte(in), in);
}

TEST(batch_format_stamp_test, heartbeats_pass_unchanged) {
  const std::string empty = bytes({0, 0, 0, 8, 2, 0, 0, 0});
  const std::string with_extended_header = bytes({0, 0, 0, 12, 3, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd});
  const std::string in = kAmqpHeader + empty + with_extended_header + empty;
  EXPECT_EQ(stamp(in), in);
  EXPECT_EQ(stamp_byte_by_byte(in), in);
}

TEST(batch_format_stamp_test, performatives_other_than_transfer_pass_unchanged) {
  // Proton's open, begin and attach; and a disposition.
  const std::string in =
      kAmqpHeader + frame(bytes({0x00, 0x53, 0x10, 0xc0, 0x10, 0x0a, 0xa1, 0x00, 0xa1, 0x01, 0x78,
                                 0x40, 0x60, 0x7f, 0xff, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40})) +
      frame(bytes({0x00, 0x53, 0x11, 0xc0, 0x0d, 0x04, 0x40, 0x43, 0x70, 0x7f, 0xff, 0xff, 0xff, 0x70, 0x7f,
                   0xff, 0xff, 0xff})) +
      frame(bytes({0x00, 0x53, 0x12, 0xc0, 0x31, 0x0e, 0xa1, 0x01, 0x73, 0x43, 0x42, 0x50, 0x02, 0x50,
                   0x00, 0x00, 0x53, 0x28, 0xc0, 0x0c, 0x0b, 0x40, 0x43, 0x40, 0x43, 0x42, 0x40, 0x40,
                   0x40, 0x40, 0x40, 0x40, 0x00, 0x53, 0x29, 0xc0, 0x0a, 0x07, 0xa1, 0x01, 0x74, 0x43,
                   0x40, 0x43, 0x42, 0x40, 0x40, 0x40, 0x40, 0x43, 0x44, 0x40, 0x40, 0x40})) +
      frame(bytes({0x00, 0x53, 0x15, 0xc0, 0x08, 0x05, 0x41, 0x43, 0x43, 0x41, 0x00, 0x53, 0x24, 0x45}));
  EXPECT_EQ(stamp(in), in);
  EXPECT_EQ(stamp_byte_by_byte(in), in);
}

TEST(batch_format_stamp_test, a_proton_transfer_of_one_event_is_untouched) {
  // As Proton 0.37 writes it: handle uint0, delivery-id uint0, the 8-byte tag, message-format uint0.
  const std::string in = frame(bytes({0x00, 0x53, 0x14, 0xc0, 0x0e, 0x04, 0x43, 0x43, 0xa0, 0x08}) +
                               tag_bytes(5) + bytes({0x43}) + kPayload);
  ASSERT_EQ(in.size(), 0x25u);
  EXPECT_EQ(stamp(in), in);
  EXPECT_EQ(decoded_format(in), 0u);
}

TEST(batch_format_stamp_test, transfers_without_a_batch_tag_are_untouched) {
  for (const std::string& fields :
       {bytes({0x43, 0x43, 0x40, 0x43}),              // null tag
        bytes({0x43, 0x43, 0xa0, 0x01, 0xff, 0x43}),  // a 1-byte tag
        bytes({0x43, 0x43, 0xa0, 0x08}) + tag_bytes(~kBatchTagBit) + bytes({0x43})}) {
    const std::string in = frame(transfer(fields, 4) + kPayload);
    EXPECT_EQ(stamp(in), in);
  }
  const std::string no_tag = frame(transfer(bytes({0x43, 0x43}), 2) + kPayload);
  EXPECT_EQ(stamp(no_tag), no_tag);
}

// ============================================================ what is stamped

TEST(batch_format_stamp_test, a_proton_transfer_of_a_batch_gets_the_batch_format) {
  // As Proton 0.37 writes it (delivery-id 1 as a smalluint), and what it must become: four bytes longer.
  const std::string in = frame(bytes({0x00, 0x53, 0x14, 0xc0, 0x0f, 0x04, 0x43, 0x52, 0x01, 0xa0, 0x08}) +
                               tag_bytes(kBatchTag) + bytes({0x43}) + kPayload);
  ASSERT_EQ(in.size(), 0x26u);
  const std::string expected = bytes({0x00, 0x00, 0x00, 0x2a, 0x02, 0x00, 0x00, 0x00, 0x00, 0x53, 0x14, 0xc0,
                                      0x13, 0x04, 0x43, 0x52, 0x01, 0xa0, 0x08}) +
                               tag_bytes(kBatchTag) + kBatchFormat + kPayload;
  const std::string out = stamp(in);
  EXPECT_EQ(out, expected);
  EXPECT_EQ(decoded_format(out), 2147563264u);
  EXPECT_EQ(2147563264u, kBatchMessageFormat);
}

TEST(batch_format_stamp_test, every_encoding_of_the_format_becomes_a_uint32) {
  const std::string head = bytes({0x43, 0x43, 0xa0, 0x08}) + tag_bytes(kBatchTag);
  const std::string after = bytes({0x40, 0x41});  // settled null, more true: the fields that follow stay
  for (const std::string& format : {bytes({0x40}), bytes({0x43}), bytes({0x52, 0x07}),
                                    bytes({0x70, 0x00, 0x00, 0x00, 0x09}), kBatchFormat}) {
    const std::string out = stamp(frame(transfer(head + format + after, 6) + kPayload));
    EXPECT_EQ(out, frame(transfer(head + kBatchFormat + after, 6) + kPayload)) << format.size();
    EXPECT_EQ(decoded_format(out), kBatchMessageFormat);
  }
}

TEST(batch_format_stamp_test, a_transfer_that_ends_with_a_batch_tag_gets_the_format_appended) {
  const std::string head = bytes({0x43, 0x43, 0xa0, 0x08}) + tag_bytes(kBatchTag);
  const std::string out = stamp(frame(transfer(head, 3) + kPayload));
  EXPECT_EQ(out, frame(transfer(head + kBatchFormat, 4) + kPayload));
  EXPECT_EQ(decoded_format(out), kBatchMessageFormat);
}

TEST(batch_format_stamp_test, other_encodings_of_the_first_fields_are_read) {
  // A symbolic descriptor, a list32, a ulong handle, a uint delivery-id, a vbin32 tag.
  const std::string fields =
      bytes({0x80, 0, 0, 0, 0, 0, 0, 0, 1, 0x70, 0, 0, 1, 0, 0xb0, 0, 0, 0, 8}) + tag_bytes(kBatchTag);
  const std::string descriptor = bytes({0x00, 0xa3, 18}) + "amqp:transfer:list";
  auto list32 = [](const std::string& fields, int count) {
    return bytes({0xd0}) + u32(static_cast<std::uint32_t>(fields.size() + 4)) +
           u32(static_cast<std::uint32_t>(count)) + fields;
  };
  const std::string out = stamp(frame(descriptor + list32(fields + bytes({0x43}), 4) + kPayload));
  EXPECT_EQ(out, frame(descriptor + list32(fields + kBatchFormat, 4) + kPayload));
}

TEST(batch_format_stamp_test, a_list8_that_would_outgrow_255_bytes_becomes_a_list32) {
  // 254 bytes of fields (size 255): the four more of the uint32 format need a list32.
  const std::string head = bytes({0x43, 0x43, 0xa0, 0x08}) + tag_bytes(kBatchTag);
  const std::string state = bytes({0xa0, 239}) + std::string(239, 's');  // any field after the format
  const std::string in = frame(transfer(head + bytes({0x43}) + state, 5) + kPayload);
  ASSERT_EQ(static_cast<unsigned char>(in[12]), 255);
  const std::string fields = head + kBatchFormat + state;
  const std::string expected =
      frame(bytes({0x00, 0x53, 0x14, 0xd0}) + u32(static_cast<std::uint32_t>(fields.size() + 4)) + u32(5) +
            fields + kPayload);
  const std::string out = stamp(in);
  EXPECT_EQ(out, expected);
  EXPECT_EQ(out.size(), in.size() + kBatchStampGrowth - 1);  // the format was one byte, not absent
  EXPECT_EQ(decoded_format(out), kBatchMessageFormat);
}

TEST(batch_format_stamp_test, every_frame_of_a_multi_frame_delivery_is_stamped) {
  // Proton's frames of a delivery that does not fit one frame: each repeats the tag and format, all but
  // the last with settled null and more true.
  const std::string head = bytes({0x43, 0x52, 0x01, 0xa0, 0x08}) + tag_bytes(kBatchTag);
  const std::string first(482, 'a');
  const std::string last(50, 'b');
  const std::string in = frame(transfer(head + bytes({0x43, 0x40, 0x41}), 6) + first) +
                         frame(transfer(head + bytes({0x43, 0x40, 0x41}), 6) + first) +
                         frame(transfer(head + bytes({0x43}), 4) + last);
  ASSERT_EQ(in.substr(0, 4), u32(512));
  const std::string expected = frame(transfer(head + kBatchFormat + bytes({0x40, 0x41}), 6) + first) +
                               frame(transfer(head + kBatchFormat + bytes({0x40, 0x41}), 6) + first) +
                               frame(transfer(head + kBatchFormat, 4) + last);
  EXPECT_EQ(stamp(in), expected);
  EXPECT_EQ(stamp_byte_by_byte(in), expected);
}

TEST(batch_format_stamp_test, pieces_of_any_size_give_the_output_of_one_piece) {
  const std::string batch =
      frame(transfer(bytes({0x43, 0x43, 0xa0, 0x08}) + tag_bytes(kBatchTag) + bytes({0x43}), 4) +
            std::string(3000, 'p'));
  const std::string single =
      frame(transfer(bytes({0x43, 0x52, 0x01, 0xa0, 0x08}) + tag_bytes(7) + bytes({0x43}), 4) +
            std::string(100, 'q'));
  const std::string heartbeat = bytes({0, 0, 0, 8, 2, 0, 0, 0});
  const std::string in = kAmqpHeader + single + batch + heartbeat + batch + single + heartbeat;
  const std::string whole = stamp(in);
  EXPECT_EQ(whole.size(), in.size() + 8);
  EXPECT_EQ(stamp_byte_by_byte(in), whole);
  std::mt19937 random(42);
  for (int round = 0; round < 50; ++round) {
    BatchFormatStamp stamp;
    std::string out;
    for (std::size_t at = 0; at < in.size();) {
      const std::size_t n = std::uniform_int_distribution<std::size_t>(0, 40)(random);
      stamp.process(std::string_view(in).substr(at, n), out);
      at += n;
    }
    EXPECT_EQ(out, whole) << "round " << round;
  }
}

// ============================================================ what is not AMQP

TEST(batch_format_stamp_test, malformed_framing_is_an_error) {
  const std::string tag = bytes({0xa0, 0x08}) + tag_bytes(kBatchTag);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"size under 8", bytes({0, 0, 0, 7, 2, 0, 0, 0})},
      {"doff under 2", bytes({0, 0, 0, 12, 1, 0, 0, 0, 0, 0, 0, 0})},
      {"doff past the frame", bytes({0, 0, 0, 12, 4, 0, 0, 0, 0, 0, 0, 0})},
      {"a body that is no performative", frame(bytes({0x45}))},
      {"a descriptor that is no ulong or symbol", frame(bytes({0x00, 0xa1, 0x01, 'x', 0x45}))},
      {"fields that are no list", frame(bytes({0x00, 0x53, 0x14, 0xa0, 0x01, 0x00}))},
      {"a list8 of size 0", frame(bytes({0x00, 0x53, 0x14, 0xc0, 0x00}))},
      {"a list past the frame", frame(bytes({0x00, 0x53, 0x14, 0xc0, 0x20, 0x04, 0x43, 0x43}))},
      {"a field past the list", frame(transfer(bytes({0x43, 0x43, 0xa0, 0x08}), 4) + tag_bytes(kBatchTag))},
      {"a tag that is no binary", frame(transfer(bytes({0x43, 0x43, 0xa1, 0x01, 'x', 0x43}), 4))},
      {"a format that is no uint", frame(transfer(bytes({0x43, 0x43}) + tag + bytes({0xa1, 0x00}), 4))},
      {"an unknown constructor", frame(transfer(bytes({0x01, 0x43}) + tag + bytes({0x43}), 4))},
  };
  for (const auto& [what, in] : cases) {
    EXPECT_THROW(stamp(kAmqpHeader + in), EventHubsError) << what;
    EXPECT_THROW(stamp_byte_by_byte(kAmqpHeader + in), EventHubsError) << what;
  }
}

// ============================================================ MaxFrameHeadroom

/// An open performative: container-id "c", hostname null, then `max_frame` and channel-max when given.
std::string open_frame(const std::string& max_frame) {
  std::string fields = bytes({0xa1, 0x01, 'c', 0x40});
  int count = 2;
  if (!max_frame.empty()) {
    fields += max_frame + bytes({0x60, 0x7f, 0xff});
    count = 4;
  }
  return frame(bytes({0x00, 0x53, 0x10, 0xc0, static_cast<int>(fields.size() + 1), count}) + fields);
}

TEST(batch_format_stamp_test, the_services_open_announces_room_for_the_stamp) {
  const std::string sasl_outcome = frame(bytes({0x00, 0x53, 0x44, 0xc0, 0x03, 0x01, 0x50, 0x00}), 1);
  const std::string heartbeat = bytes({0, 0, 0, 8, 2, 0, 0, 0});
  const std::string after =
      frame(bytes({0x00, 0x53, 0x11, 0x45})) + bytes({0, 0, 0, 7});  // then anything passes
  const std::string in =
      kSaslHeader + sasl_outcome + kAmqpHeader + heartbeat + open_frame(bytes({0x70}) + u32(65536)) + after;
  const std::string expected = kSaslHeader + sasl_outcome + kAmqpHeader + heartbeat +
                               open_frame(bytes({0x70}) + u32(65536 - kBatchStampGrowth)) + after;
  EXPECT_EQ(edited<MaxFrameHeadroom>(in), expected);
  EXPECT_EQ(edited<MaxFrameHeadroom>(in, true), expected);
}

TEST(batch_format_stamp_test, an_open_without_a_limit_is_left_alone) {
  for (const std::string& max_frame : {std::string(), bytes({0x40}), bytes({0x70}) + u32(512)}) {
    const std::string in = kAmqpHeader + open_frame(max_frame);
    EXPECT_EQ(edited<MaxFrameHeadroom>(in), in) << max_frame.size();
  }
  EXPECT_THROW(edited<MaxFrameHeadroom>(kAmqpHeader + frame(bytes({0x00, 0x53, 0x11, 0x45}))),
               EventHubsError);
}

// ============================================================ between real Proton peers

/// A Proton client (one sender link) and server joined in memory. What the client writes goes through
/// a BatchFormatStamp, and what the server writes through a MaxFrameHeadroom, when asked for. The
/// server opens what the client opens, grants credit and accepts every complete delivery.
class ProtonPair {
 public:
  struct Received {
    std::string tag;
    std::string payload;
  };

  ProtonPair(std::uint32_t server_max_frame, bool stamp, bool headroom) {
    if (stamp) stamp_.emplace();
    if (headroom) headroom_.emplace();
    pn_transport_set_server(server_transport_);
    pn_sasl_allowed_mechs(pn_sasl(client_transport_), "ANONYMOUS");
    pn_sasl_allowed_mechs(pn_sasl(server_transport_), "ANONYMOUS");
    if (server_max_frame != 0) pn_transport_set_max_frame(server_transport_, server_max_frame);
    pn_transport_bind(client_transport_, client_);
    pn_transport_bind(server_transport_, server_);
    pn_connection_set_hostname(client_, "ns.example");
    pn_connection_open(client_);
    pn_session_t* session = pn_session(client_);
    pn_session_open(session);
    sender_ = pn_sender(session, "sender");
    pn_terminus_set_address(pn_link_target(sender_), "hub");
    pn_link_open(sender_);
    exchange();
  }
  ~ProtonPair() {
    pn_transport_unbind(client_transport_);
    pn_transport_unbind(server_transport_);
    pn_transport_free(client_transport_);
    pn_transport_free(server_transport_);
    pn_connection_free(client_);
    pn_connection_free(server_);
  }
  ProtonPair(const ProtonPair&) = delete;
  ProtonPair& operator=(const ProtonPair&) = delete;

  int credit() const { return pn_link_credit(sender_); }

  /// Sends one delivery as the sink does: its tag the number's bytes.
  void send(std::uint64_t tag, const std::string& payload) {
    pn_delivery(sender_, pn_dtag(reinterpret_cast<const char*>(&tag), sizeof tag));
    pn_link_send(sender_, payload.data(), payload.size());
    pn_link_advance(sender_);
    exchange();
  }

  /// What the client wrote, before the stamp.
  const std::string& client_wrote() const { return client_wrote_; }
  /// What the server read: the client's bytes after the stamp.
  const std::string& server_read() const { return server_read_; }
  const std::vector<Received>& received() const { return received_; }
  /// The server transport's error, empty when none.
  std::string server_error() const {
    pn_condition_t* condition = pn_transport_condition(server_transport_);
    if (!pn_condition_is_set(condition)) return {};
    return std::string(pn_condition_get_name(condition)) + ": " + pn_condition_get_description(condition);
  }

 private:
  void exchange() {
    for (int round = 0; round < 100; ++round) {
      bool moved = move(client_transport_, server_transport_, stamp_ ? &*stamp_ : nullptr, client_wrote_,
                        server_read_, to_server_);
      serve();
      moved |= move(server_transport_, client_transport_, headroom_ ? &*headroom_ : nullptr, server_wrote_,
                    client_read_, to_client_);
      if (!moved) return;
    }
  }

  static bool move(pn_transport_t* from, pn_transport_t* to, AmqpFrameEditor* editor, std::string& wrote,
                   std::string& read, std::string& queue) {
    const ssize_t pending = pn_transport_pending(from);
    if (pending <= 0 && queue.empty()) return false;
    if (pending > 0) {
      const std::string_view out(pn_transport_head(from), static_cast<std::size_t>(pending));
      wrote.append(out);
      if (editor != nullptr) {
        editor->process(out, queue);
      } else {
        queue.append(out);
      }
      pn_transport_pop(from, static_cast<std::size_t>(pending));
    }
    while (!queue.empty()) {
      const ssize_t pushed = pn_transport_push(to, queue.data(), queue.size());
      if (pushed <= 0) break;
      read.append(queue, 0, static_cast<std::size_t>(pushed));
      queue.erase(0, static_cast<std::size_t>(pushed));
    }
    return true;
  }

  void serve() {
    if (pn_connection_state(server_) & PN_LOCAL_UNINIT) pn_connection_open(server_);
    for (pn_session_t* s = pn_session_head(server_, PN_LOCAL_UNINIT); s;
         s = pn_session_head(server_, PN_LOCAL_UNINIT))
      pn_session_open(s);
    for (pn_link_t* link = pn_link_head(server_, 0); link; link = pn_link_next(link, 0)) {
      if (pn_link_state(link) & PN_LOCAL_UNINIT) {
        pn_link_open(link);
        pn_link_flow(link, 100);
      }
      while (pn_delivery_t* delivery = pn_link_current(link)) {
        if (pn_delivery_partial(delivery)) break;
        Received received;
        const pn_delivery_tag_t tag = pn_delivery_tag(delivery);
        received.tag.assign(tag.start, tag.size);
        char buffer[4096];
        for (ssize_t n; (n = pn_link_recv(link, buffer, sizeof buffer)) > 0;)
          received.payload.append(buffer, n);
        received_.push_back(std::move(received));
        pn_link_advance(link);
        pn_delivery_update(delivery, PN_ACCEPTED);
        pn_delivery_settle(delivery);
      }
    }
  }

  pn_connection_t* client_ = pn_connection();
  pn_connection_t* server_ = pn_connection();
  pn_transport_t* client_transport_ = pn_transport();
  pn_transport_t* server_transport_ = pn_transport();
  pn_link_t* sender_ = nullptr;
  std::optional<BatchFormatStamp> stamp_;
  std::optional<MaxFrameHeadroom> headroom_;
  std::string client_wrote_, server_read_, server_wrote_, client_read_;
  std::string to_server_, to_client_;  // what the other side has not taken yet
  std::vector<Received> received_;
};

std::vector<std::string> transfers(const std::string& stream) {
  std::vector<std::string> out;
  for (std::string& f : frames(stream)) {
    if (is_transfer(f)) out.push_back(std::move(f));
  }
  return out;
}

TEST(batch_format_stamp_test, a_proton_receiver_takes_what_a_proton_sender_wrote_once_stamped) {
  ProtonPair pair(0, true, true);
  ASSERT_GT(pair.credit(), 1) << pair.server_error();
  pair.send(5, "one event");
  pair.send(kBatchTag, "a batch");
  ASSERT_EQ(pair.server_error(), "");
  ASSERT_EQ(pair.received().size(), 2u);
  EXPECT_EQ(pair.received()[0].tag, tag_bytes(5));
  EXPECT_EQ(pair.received()[0].payload, "one event");
  EXPECT_EQ(pair.received()[1].tag, tag_bytes(kBatchTag));
  EXPECT_EQ(pair.received()[1].payload, "a batch");

  const auto written = transfers(pair.client_wrote());
  const auto read = transfers(pair.server_read());
  ASSERT_EQ(written.size(), 2u);
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[0], written[0]);
  EXPECT_EQ(decoded_format(written[1]), 0u);  // what Proton writes for any delivery
  EXPECT_EQ(decoded_format(read[1]), kBatchMessageFormat);
  EXPECT_EQ(read[1].size(), written[1].size() + 4);
  // Everything else the client wrote (headers, SASL, open, begin, attach, flow) is as it was.
  EXPECT_EQ(pair.server_read().size(), pair.client_wrote().size() + 4);
  EXPECT_EQ(stamp_byte_by_byte(pair.client_wrote()), pair.server_read());
}

TEST(batch_format_stamp_test, the_frames_of_a_large_proton_batch_fit_the_servers_limit_once_stamped) {
  // Proton fills each frame up to the server's max-frame-size; the headroom keeps stamped frames within it.
  ProtonPair pair(1024, true, true);
  const std::string payload(6000, 'z');
  pair.send(kBatchTag, payload);
  ASSERT_EQ(pair.server_error(), "");
  ASSERT_EQ(pair.received().size(), 1u);
  EXPECT_EQ(pair.received()[0].payload, payload);
  const auto read = transfers(pair.server_read());
  ASSERT_GT(read.size(), 5u);
  for (const std::string& f : read) {
    EXPECT_LE(f.size(), 1024u);
    EXPECT_EQ(decoded_format(f), kBatchMessageFormat);
  }
  EXPECT_EQ(transfers(pair.client_wrote())[0].size(), 1024u - kBatchStampGrowth);
  EXPECT_EQ(stamp_byte_by_byte(pair.client_wrote()), pair.server_read());
}

TEST(batch_format_stamp_test, without_the_headroom_a_full_stamped_frame_exceeds_the_servers_limit) {
  ProtonPair pair(1024, true, false);
  pair.send(kBatchTag, std::string(6000, 'z'));
  const auto read = transfers(pair.server_read());
  ASSERT_FALSE(read.empty());
  EXPECT_EQ(read[0].size(), 1028u);
  EXPECT_NE(pair.server_error(), "") << "Proton took a frame over its max-frame-size";
  EXPECT_TRUE(pair.received().empty());
}

}  // namespace
}  // namespace connector
