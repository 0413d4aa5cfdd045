#include "stand_ins/hs256_jwt.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>

#include "identity/jwt.hpp"

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
