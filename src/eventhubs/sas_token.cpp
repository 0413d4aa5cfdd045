#include "eventhubs/sas_token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/format.h>

namespace connector {

std::string sas_signature(std::string_view key, std::string_view string_to_sign) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(string_to_sign.data()), string_to_sign.size(), digest.data(),
       &digest_length);
  std::string encoded(4 * ((digest_length + 2) / 3), '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()), digest.data(),
                                      static_cast<int>(digest_length));
  encoded.resize(static_cast<std::size_t>(written));
  return encoded;
}

std::string make_sas_token(std::string_view resource_uri, std::string_view key_name, std::string_view key,
                           std::chrono::system_clock::time_point expiry) {
  const long long se =
      std::chrono::duration_cast<std::chrono::seconds>(expiry.time_since_epoch()).count();
  const std::string sr = url_encode(resource_uri);
  const std::string signature = sas_signature(key, fmt::format("{}\n{}", sr, se));
  return fmt::format("SharedAccessSignature sr={}&sig={}&se={}&skn={}", sr, url_encode(signature), se,
                     url_encode(key_name));
}

bool parse_sas_token(std::string_view token, SasTokenParts& parts) {
  constexpr std::string_view kPrefix = "SharedAccessSignature ";
  if (token.substr(0, kPrefix.size()) != kPrefix) return false;
  token.remove_prefix(kPrefix.size());
  bool have_sr = false, have_sig = false, have_se = false;
  while (!token.empty()) {
    const auto amp = token.find('&');
    const std::string_view pair = token.substr(0, amp);
    token = amp == std::string_view::npos ? std::string_view{} : token.substr(amp + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) return false;
    const std::string_view name = pair.substr(0, eq);
    const std::string_view value = pair.substr(eq + 1);
    if (name == "sr") {
      parts.encoded_resource = std::string(value);
      parts.resource = url_decode(value);
      have_sr = true;
    } else if (name == "sig") {
      parts.signature = url_decode(value);
      have_sig = true;
    } else if (name == "se") {
      if (value.empty() || !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
          value.size() > 15) {
        return false;
      }
      parts.expiry = std::stoll(std::string(value));
      have_se = true;
    } else if (name == "skn") {
      parts.key_name = url_decode(value);
    }
  }
  return have_sr && have_sig && have_se;
}

namespace {
std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}
}  // namespace

bool verify_sas_token(std::string_view token, std::string_view audience, std::string_view key_name,
                      std::string_view key, std::chrono::system_clock::time_point now) {
  SasTokenParts parts;
  if (!parse_sas_token(token, parts)) return false;
  if (parts.key_name != key_name) return false;
  const long long now_seconds =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (parts.expiry <= now_seconds) return false;
  const std::string expected = sas_signature(key, fmt::format("{}\n{}", parts.encoded_resource, parts.expiry));
  if (expected.size() != parts.signature.size() ||
      CRYPTO_memcmp(expected.data(), parts.signature.data(), expected.size()) != 0) {
    return false;
  }
  const std::string resource = lower(parts.resource);
  const std::string wanted = lower(audience);
  return wanted == resource ||
         (wanted.size() > resource.size() && wanted.compare(0, resource.size(), resource) == 0 &&
          wanted[resource.size()] == '/');
}

}  // namespace connector
