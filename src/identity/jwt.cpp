#include "identity/jwt.hpp"

#include <openssl/evp.h>


namespace connector {

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

}  // namespace connector
