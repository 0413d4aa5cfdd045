#pragma once
// Certificates made at test time: a CA, a server certificate for localhost/127.0.0.1 and a client one.
#include <filesystem>

namespace connector::testing {

/// Files of a throw-away PKI in `dir`; the server certificate covers DNS:localhost and IP:127.0.0.1.
struct TlsCertificates {
  std::filesystem::path ca_cert, ca_key;
  std::filesystem::path server_cert, server_key;
  std::filesystem::path client_cert, client_key;
  std::filesystem::path other_ca_cert;  // a CA that signed nothing here: verification must fail with it
};

/// Makes the files with the `openssl` command (RSA 2048, 1 day); throws std::runtime_error on failure.
TlsCertificates make_test_certificates(const std::filesystem::path& dir);

}  // namespace connector::testing
