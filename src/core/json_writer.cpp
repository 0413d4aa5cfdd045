#include "core/json_writer.hpp"

#include <openssl/evp.h>

#include <cstdint>
#include <cstring>

namespace connector {
namespace {

// Eight bytes at a time: large entries spend most of their encoding time in these two scans, and
// telemetry is mostly plain ASCII. memcpy is how C++ reads a word from unaligned bytes without UB.
constexpr std::size_t kWord = sizeof(std::uint64_t);
constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;

std::uint64_t load_word(const char* p) noexcept {
  std::uint64_t word;
  std::memcpy(&word, p, kWord);
  return word;
}

// Exact "some byte is zero" / "some byte is below n (n <= 128)" tests (Bit Twiddling Hacks).
constexpr std::uint64_t has_zero_byte(std::uint64_t word) { return (word - kOnes) & ~word & kHighBits; }
constexpr std::uint64_t has_byte_below(std::uint64_t word, std::uint64_t n) {
  return (word - kOnes * n) & ~word & kHighBits;
}

/// True when none of the word's bytes needs escaping in a JSON string (control, '"', '\\').
constexpr bool word_needs_no_escape(std::uint64_t word) {
  return has_byte_below(word, 0x20) == 0 && has_zero_byte(word ^ (kOnes * '"')) == 0 &&
         has_zero_byte(word ^ (kOnes * '\\')) == 0;
}

static_assert(word_needs_no_escape(0x6867666564636261ULL));   // "abcdefgh"
static_assert(!word_needs_no_escape(0x6867666564226261ULL));  // a quote
static_assert(!word_needs_no_escape(0x68676665645C6261ULL));  // a backslash
static_assert(!word_needs_no_escape(0x686766656400FFFFULL));  // a NUL between high bytes
static_assert(word_needs_no_escape(0xFFFFFFFFFFFFFFFFULL));   // bytes >= 0x80 pass (UTF-8 is kept)

}  // namespace

bool is_valid_utf8(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // Fast path for ASCII runs, which is what telemetry mostly is.
    if (end - p >= static_cast<std::ptrdiff_t>(kWord) &&
        (load_word(reinterpret_cast<const char*>(p)) & kHighBits) == 0) {
      p += kWord;
      continue;
    }
    if (*p < 0x80) {
      ++p;
      continue;
    }
    unsigned int code = 0;
    int extra = 0;
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
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      code = (code << 6) | (p[i] & 0x3F);
    }
    static constexpr unsigned int kMinimum[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMinimum[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    p += extra + 1;
  }
  return true;
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run_start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    while (i + kWord <= text.size() && word_needs_no_escape(load_word(text.data() + i))) i += kWord;
    if (i == text.size()) break;
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + run_start, i - run_start);
    run_start = i + 1;
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0x0F]);
    }
  }
  out.append(text.data() + run_start, text.size() - run_start);
  out.push_back('"');
}

void append_base64(std::string& out, std::string_view bytes) {
  const std::size_t offset = out.size();
  out.resize(offset + 4 * ((bytes.size() + 2) / 3) + 1);  // EVP_EncodeBlock writes a trailing NUL
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + offset),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(offset + static_cast<std::size_t>(written));
}

void append_json_text_or_base64(std::string& out, std::string_view bytes) {
  if (is_valid_utf8(bytes)) {
    append_json_string(out, bytes);
  } else {
    out.append("{\"$base64\":\"");
    append_base64(out, bytes);
    out.append("\"}");
  }
}

void append_json_key(std::string& out, std::string_view bytes) {
  if (is_valid_utf8(bytes)) {
    append_json_string(out, bytes);
  } else {
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
