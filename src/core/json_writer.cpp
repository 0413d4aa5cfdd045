#include "core/json_writer.hpp"

#include <openssl/evp.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <bit>
#include <cstdint>
#include <cstring>

namespace connector {
namespace {

// Eight bytes at a time: large entries spend most of their encoding time in this scan, and telemetry
// is mostly plain ASCII. memcpy is how C++ reads a word from unaligned bytes without UB.
constexpr std::size_t kWord = sizeof(std::uint64_t);
constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;

std::uint64_t load_word(const unsigned char* p) noexcept {
  std::uint64_t word;
  std::memcpy(&word, p, kWord);
  return word;
}

// The first byte a JSON string cannot copy as is: a control byte, '"', '\\', or a byte >= 0x80 (the
// start of a UTF-8 sequence, to be checked). Each term flags its first matching byte exactly; borrows
// can flag bytes after it, never before (Bit Twiddling Hacks), so the lowest set bit of the union is
// exact, and on a little-endian machine the lowest bit is the lowest address.
static_assert(std::endian::native == std::endian::little, "special_bytes() finds the first byte by its low bits");
constexpr std::uint64_t zero_bytes(std::uint64_t word) { return (word - kOnes) & ~word; }
constexpr std::uint64_t special_bytes(std::uint64_t word) {
  return ((word - kOnes * 0x20) | word | zero_bytes(word ^ (kOnes * '"')) | zero_bytes(word ^ (kOnes * '\\'))) &
         kHighBits;
}

static_assert(special_bytes(0x6867666564636261ULL) == 0);      // "abcdefgh"
static_assert(special_bytes(0x7E7E7E7E7E7E7E20ULL) == 0);      // ' ' and '~' are the bounds of plain
static_assert(special_bytes(0x6867666564226261ULL) == 0x800000);  // a quote, third byte
static_assert((special_bytes(0x686766655C636261ULL) & 0xFFFFFFFF) == 0x80000000);  // a backslash, fourth
static_assert((special_bytes(0x686766656400FFFFULL) & 0xFF) == 0x80);  // a high byte first
static_assert((special_bytes(0x6867666564630062ULL) & 0xFFFF) == 0x8000);  // a NUL, second byte
static_assert((special_bytes(0x686766656463621FULL) & 0xFF) == 0x80);  // 0x1F

/// The first byte at or after `p` that special_bytes() flags, or `end`.
const unsigned char* skip_plain(const unsigned char* p, const unsigned char* end) noexcept {
#if defined(__SSE2__)
  // Sixteen bytes at a time where x86-64 guarantees SSE2 (the words below then only see the tail): a
  // signed compare below 0x20 flags control bytes and bytes >= 0x80 (negative) in one instruction.
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  for (; end - p >= 16; p += 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i special = _mm_or_si128(_mm_cmplt_epi8(bytes, space),
                                         _mm_or_si128(_mm_cmpeq_epi8(bytes, quote), _mm_cmpeq_epi8(bytes, backslash)));
    const auto mask = static_cast<unsigned>(_mm_movemask_epi8(special));
    if (mask != 0) return p + std::countr_zero(mask);
  }
#endif
  for (; end - p >= static_cast<std::ptrdiff_t>(kWord); p += kWord) {
    const std::uint64_t special = special_bytes(load_word(p));
    if (special != 0) return p + std::countr_zero(special) / 8;
  }
  while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') ++p;
  return p;
}

/// Length of the well-formed UTF-8 sequence that starts with the byte >= 0x80 at `p`, or 0: no
/// overlongs, no surrogates, nothing above U+10FFFF, nothing cut off by `end`.
std::size_t utf8_sequence_length(const unsigned char* p, const unsigned char* end) noexcept {
  unsigned int code = 0;
  std::size_t extra = 0;
  if ((*p & 0xE0) == 0xC0) {
    code = *p & 0x1F;
    extra = 1;
  } else if ((*p & 0xF0) == 0xE0) {
    code = *p & 0x0F;
    extra = 2;
  } else if ((*p & 0xF8) == 0xF0) {
    code = *p & 0x07;
    extra = 3;
  } else {
    return 0;
  }
  if (static_cast<std::size_t>(end - p) <= extra) return 0;
  for (std::size_t i = 1; i <= extra; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    code = (code << 6) | (p[i] & 0x3F);
  }
  static constexpr unsigned int kMinimum[] = {0, 0x80, 0x800, 0x10000};
  if (code < kMinimum[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return extra + 1;
}

void append_escape(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"': out.append("\\\""); break;
    case '\\': out.append("\\\\"); break;
    case '\n': out.append("\\n"); break;
    case '\r': out.append("\\r"); break;
    case '\t': out.append("\\t"); break;
    case '\b': out.append("\\b"); break;
    case '\f': out.append("\\f"); break;
    default: {
      const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0x0F]};
      out.append(escaped, sizeof escaped);
    }
  }
}

/// One pass that escapes and, with `kCheckUtf8`, validates: on the first ill-formed sequence it
/// returns false with `out` as it was. Without the check, bytes >= 0x80 are copied as they are.
template <bool kCheckUtf8>
bool append_quoted(std::string& out, std::string_view text) {
  const std::size_t rollback = out.size();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  const auto* run = p;  // start of the bytes not yet copied
  out.push_back('"');
  while ((p = skip_plain(p, end)) != end) {
    if (*p >= 0x80) {
      if constexpr (kCheckUtf8) {
        const std::size_t length = utf8_sequence_length(p, end);
        if (length == 0) {
          out.resize(rollback);
          return false;
        }
        p += length;
      } else {
        ++p;
      }
      continue;
    }
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    append_escape(out, *p);
    run = ++p;
  }
  out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(end - run));
  out.push_back('"');
  return true;
}

}  // namespace

bool is_plain_json_text(std::string_view bytes) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto* end = p + bytes.size();
  return skip_plain(p, end) == end;
}

bool is_valid_utf8(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // ASCII runs, which is what telemetry mostly is, go a word at a time.
    if (end - p >= static_cast<std::ptrdiff_t>(kWord) && (load_word(p) & kHighBits) == 0) {
      p += kWord;
    } else if (*p < 0x80) {
      ++p;
    } else {
      const std::size_t length = utf8_sequence_length(p, end);
      if (length == 0) return false;
      p += length;
    }
  }
  return true;
}

void append_json_string(std::string& out, std::string_view text) { append_quoted<false>(out, text); }

bool append_json_string_if_utf8(std::string& out, std::string_view bytes) { return append_quoted<true>(out, bytes); }

void append_base64(std::string& out, std::string_view bytes) {
  const std::size_t offset = out.size();
  out.resize(offset + 4 * ((bytes.size() + 2) / 3) + 1);  // EVP_EncodeBlock writes a trailing NUL
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + offset),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(offset + static_cast<std::size_t>(written));
}

void append_json_text_or_base64(std::string& out, std::string_view bytes) {
  if (!append_json_string_if_utf8(out, bytes)) {
    out.append("{\"$base64\":\"");
    append_base64(out, bytes);
    out.append("\"}");
  }
}

void append_json_key(std::string& out, std::string_view bytes) {
  if (!append_json_string_if_utf8(out, bytes)) {
    out.append("\"$base64:");
    append_base64(out, bytes);
    out.push_back('"');
  }
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  append_base64(out, bytes);
  return out;
}

}  // namespace connector
