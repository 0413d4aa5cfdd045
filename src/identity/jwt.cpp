#include "identity/jwt.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>

namespace connector {
namespace {

std::string hmac_sha256(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data(), &length);
  return std::string(reinterpret_cast<const char*>(digest.data()), length);
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int written =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(written));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (auto& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  std::string standard(text);
  while (!standard.empty() && standard.back() == '=') standard.pop_back();
  for (auto& c : standard) {
    if (c == '-')
      c = '+';
    else if (c == '_')
      c = '/';
    else if (c == '+' || c == '/')
      return std::nullopt;
  }
  if (standard.size() % 4 == 1) return std::nullopt;
  const std::size_t padding = (4 - standard.size() % 4) % 4;
  standard.append(padding, '=');
  std::string out(standard.size() / 4 * 3, '\0');
  // EVP_DecodeBlock rejects characters outside the alphabet and counts padding as zero bytes.
  const int written = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(standard.data()),
                                      static_cast<int>(standard.size()));
  if (written < 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(written) - padding);
  return out;
}

std::optional<nlohmann::json> jwt_claims(std::string_view token) {
  const auto first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = token.find('.', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  const auto payload = base64url_decode(token.substr(first + 1, second - first - 1));
  if (!payload) return std::nullopt;
  auto claims = nlohmann::json::parse(*payload, nullptr, false);
  if (claims.is_discarded() || !claims.is_object()) return std::nullopt;
  return claims;
}

std::string sign_jwt_hs256(const nlohmann::json& claims, std::string_view key) {
  const std::string signing_input =
      base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url_encode(claims.dump());
  return signing_input + "." + base64url_encode(hmac_sha256(key, signing_input));
}

std::string verify_jwt_hs256(std::string_view token, std::string_view key, std::string_view audience,
                             std::chrono::system_clock::time_point now, long long* expiry) {
  const auto last = token.rfind('.');
  if (last == std::string_view::npos) return "not a JWT";
  const auto expected = base64url_encode(hmac_sha256(key, token.substr(0, last)));
  const auto signature = token.substr(last + 1);
  if (expected.size() != signature.size() ||
      CRYPTO_memcmp(expected.data(), signature.data(), expected.size()) != 0) {
    return "signature does not verify";
  }
  const auto claims = jwt_claims(token);
  if (!claims) return "payload is not a JSON object";
  if (!claims->contains("aud") || !(*claims)["aud"].is_string() || (*claims)["aud"] != audience) {
    return "audience is not " + std::string(audience);
  }
  if (!claims->contains("exp") || !(*claims)["exp"].is_number_integer()) return "no exp claim";
  const long long exp = (*claims)["exp"].get<long long>();
  if (exp <= std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count()) {
    return "token expired";
  }
  if (expiry != nullptr) *expiry = exp;
  return {};
}

}  // namespace connector
