#pragma once
// JSON Web Tokens as far as the connector needs them: reading claims (Redis user name from `oid`) and,
// for the test stand-ins, HS256 signing and verification.
#include <chrono>
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

/// A compact JWT with header {"alg":"HS256","typ":"JWT"} and `claims`, signed with `key`.
std::string sign_jwt_hs256(const nlohmann::json& claims, std::string_view key);

/// Why a token was refused; empty when it was accepted.
std::string verify_jwt_hs256(std::string_view token, std::string_view key, std::string_view audience,
                             std::chrono::system_clock::time_point now, long long* expiry = nullptr);

}  // namespace connector
