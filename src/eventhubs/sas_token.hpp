#pragma once
// Shared Access Signature tokens for Event Hubs claims-based security; the key signs as its UTF-8 text,
// and exactly the URL-encoded resource that is sent is signed.
#include <chrono>
#include <string>
#include <string_view>

#include "common/url_encoding.hpp"  // the encoding tokens are signed in

namespace connector {

/// "SharedAccessSignature sr=<enc(uri)>&sig=<enc(b64(HMAC-SHA256(key, enc(uri)\n<expiry>)))>&se=<expiry>&skn=<name>".
/// `key` is used as its UTF-8 bytes, not base64-decoded.
std::string make_sas_token(std::string_view resource_uri, std::string_view key_name, std::string_view key,
                           std::chrono::system_clock::time_point expiry);

/// The signature part alone: base64(HMAC-SHA256(key, string_to_sign)).
std::string sas_signature(std::string_view key, std::string_view string_to_sign);

/// The fields of a token, as a receiver (fake-eventhubs) sees them; `sr` and `sig` are decoded.
struct SasTokenParts {
  std::string resource;        // decoded sr
  std::string encoded_resource;  // sr exactly as sent (what was signed)
  std::string signature;       // decoded sig
  std::string key_name;        // skn
  long long expiry = 0;        // se, Unix seconds
};
/// Parses a token; returns false when it is not of the SharedAccessSignature form.
bool parse_sas_token(std::string_view token, SasTokenParts& parts);

/// True when the token is well formed, signed with `key` under `key_name`, not expired at `now`,
/// and its resource is `audience` or a prefix of it at a '/' boundary (case-insensitive, as the service).
bool verify_sas_token(std::string_view token, std::string_view audience, std::string_view key_name,
                      std::string_view key, std::chrono::system_clock::time_point now);

}  // namespace connector
