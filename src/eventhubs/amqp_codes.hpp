#pragma once
// AMQP 1.0 type codes (part 1, "Types") and message section descriptors (part 3, "Messaging"): shared by
// the sink's encoder and fake-eventhubs' reader of the same bytes.

namespace connector::amqp {

/// Constructor bytes of the encodings used; `8`/`32` name the width of the length (and count) fields.
enum Code : unsigned char {
  kDescribed = 0x00,
  kNull = 0x40,
  kUint0 = 0x43,
  kList0 = 0x45,
  kSmallUint = 0x52,
  kSmallUlong = 0x53,
  kUint = 0x70,
  kUlong = 0x80,
  kVbin8 = 0xa0,
  kStr8 = 0xa1,
  kSym8 = 0xa3,
  kVbin32 = 0xb0,
  kStr32 = 0xb1,
  kSym32 = 0xb3,
  kList8 = 0xc0,
  kMap8 = 0xc1,
  kList32 = 0xd0,
  kMap32 = 0xd1,
};

/// Descriptors (smallulong) of the message sections: consecutive, in the order a message carries them.
enum Section : unsigned char {
  kHeader = 0x70,
  kDeliveryAnnotations,
  kMessageAnnotations,
  kProperties,
  kApplicationProperties,
  kData,
  kAmqpSequence,
  kAmqpValue,
  kFooter,
};
static_assert(kData == 0x75 && kFooter == 0x78);

}  // namespace connector::amqp
