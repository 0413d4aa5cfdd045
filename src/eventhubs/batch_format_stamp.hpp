#pragma once
// Event Hubs batches through Proton. The service takes many events in one delivery when its transfer
// frames carry the batch message format; Proton C 0.37 writes format 0 in every transfer frame and has no
// way to say otherwise, so AmqpIoLoop edits Proton's bytes on their way to the socket:
// the sink marks a batch by its delivery tag, and BatchFormatStamp sets the format on that delivery's
// frames. A stamped frame is a few bytes longer, so MaxFrameHeadroom, on the way back, makes Proton leave
// that much room below the service's frame size limit.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace connector {

/// The message format of an Event Hubs batch (an "EventDataBatch"): one delivery, many events.
inline constexpr std::uint32_t kBatchMessageFormat = 0x80013700;
/// The bit of a sink delivery tag (8 bytes, a host-order std::uint64_t) that marks a batch delivery.
inline constexpr std::uint64_t kBatchTagBit = std::uint64_t{1} << 63;
/// The most bytes BatchFormatStamp adds to a frame: the message format written as a uint32 where it was
/// one byte or absent (+5), and the performative's list grown from list8 into list32 (+6).
inline constexpr std::uint32_t kBatchStampGrowth = 11;

/// Passes an AMQP byte stream (one direction of a connection, protocol headers included) through,
/// holding back only the head of each frame (its header and the first bytes of its body) until the
/// subclass has decided whether to rewrite it; the rest of the frame streams on as it comes.
class AmqpFrameEditor {
 public:
  virtual ~AmqpFrameEditor() = default;

  /// Appends to `out` what `in` becomes; bytes it cannot decide on yet (part of a frame's head) are kept
  /// for the next call. Throws EventHubsError (common/errors.hpp) when the bytes cannot be read as AMQP
  /// framing: the connection must then be dropped.
  void process(std::string_view in, std::string& out);

 protected:
  /// `window`: how many bytes of a frame's body (after its extended header) a decision may read.
  explicit AmqpFrameEditor(std::size_t window) : window_(window) {}

  /// The fixed part of a frame, read from its first 8 bytes.
  struct Frame {
    std::uint32_t size = 0;  // header included
    std::uint8_t type = 0;   // kAmqpFrameType or kSaslFrameType
    std::size_t body = 0;    // where the body starts: after the extended header
  };
  static constexpr std::uint8_t kAmqpFrameType = 0;
  static constexpr std::uint8_t kSaslFrameType = 1;

  /// Decides on a frame with a body, given its head: the whole frame, or its first body + window bytes
  /// when it is longer. Either returns 0 (the frame passes unchanged) or writes to `out` what the first
  /// n bytes of the head become and returns n. Throws EventHubsError when the head is not AMQP.
  virtual std::size_t edit(const Frame& frame, std::string_view head, std::string& out) = 0;

  /// From the end of the current frame on, every byte passes without being looked at.
  void pass_the_rest() { passing_ = true; }

 private:
  /// How many bytes the head that starts `bytes` has: 8 until its first 8 bytes say more.
  std::size_t head_length(std::string_view bytes) const;
  /// Writes what a whole head becomes; rest_ is then what follows it of its frame.
  void finish_head(std::string_view head, std::string& out);

  const std::size_t window_;
  std::string head_;        // the head gathered so far, when it came in pieces
  std::uint64_t rest_ = 0;  // bytes of the current frame still to pass unchanged
  bool passing_ = false;
};

/// Rewrites the client → service AMQP byte stream: every transfer frame of a delivery whose tag carries
/// kBatchTagBit gets message-format kBatchMessageFormat; every other byte passes unchanged.
class BatchFormatStamp final : public AmqpFrameEditor {
 public:
  BatchFormatStamp();

 private:
  std::size_t edit(const Frame& frame, std::string_view head, std::string& out) override;
};

/// Rewrites the service → client AMQP byte stream: the max-frame-size of the service's open (the first
/// AMQP frame) is lowered by kBatchStampGrowth, so that the transfer frames Proton fills up to the limit
/// still fit within the service's limit once BatchFormatStamp has grown them. Every other byte passes
/// unchanged; after the open, without being looked at.
class MaxFrameHeadroom final : public AmqpFrameEditor {
 public:
  MaxFrameHeadroom();

 private:
  std::size_t edit(const Frame& frame, std::string_view head, std::string& out) override;
};

}  // namespace connector
