#pragma once
// JSON Web Tokens as far as the connector needs them: reading claims (the Redis user name is the token's
// `oid`). Signing is the token services' job; the test stand-ins have theirs in tools/stand_ins.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace connector {

/// base64url without padding (RFC 7515 §2).
std::string base64url_encode(std::string_view bytes);
/// Decodes base64url with or without padding; nullopt when `text` is not base64url.
std::optional<std::string> base64url_decode(std::string_view text);

/// The payload (claims) of a compact JWT, not verified; nullopt when it is not header.payload.signature
/// with a JSON object as payload.
std::optional<nlohmann::json> jwt_claims(std::string_view token);

}  // namespace connector
