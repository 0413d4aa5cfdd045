#pragma once
// HS256-signed JWTs for the stand-ins of Microsoft Entra ID: the fake token service signs them and
// fake-eventhubs verifies them. The connector itself never signs a token, so none of this is in its library.
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace connector {

/// A compact JWT with header {"alg":"HS256","typ":"JWT"} and `claims`, signed with `key`.
std::string sign_jwt_hs256(const nlohmann::json& claims, std::string_view key);

/// Why a token was refused; empty when it was accepted.
std::string verify_jwt_hs256(std::string_view token, std::string_view key, std::string_view audience,
                             std::chrono::system_clock::time_point now, long long* expiry = nullptr);

}  // namespace connector
