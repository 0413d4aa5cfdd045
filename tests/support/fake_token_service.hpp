#pragma once
// Test fixture: a Microsoft Entra ID token service stand-in over HTTPS on loopback, in the test process.
// It implements the client-credentials endpoint (client secret and workload identity), the App Service
// managed identity endpoint and IMDS, checks every request exactly, and issues HS256-signed JWTs.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.hpp"
#include "support/tls_certs.hpp"

namespace httplib {
class SSLServer;
}

namespace connector::testing {

struct FakeTokenServiceOptions {
  std::string tenant_id = "test-tenant";
  std::string client_id = "test-client-id";
  std::string client_secret = "test-client-secret-Zq8";
  std::filesystem::path assertion_file;  // workload identity: client_assertion must equal its contents
  std::string identity_header = "test-identity-header-Xw3";
  std::string managed_client_id;  // IMDS / App Service: the client_id the request must carry ("" = none)
  std::string object_id = "0f5e2c9a-1111-4222-8333-944455556666";
  std::string signing_key = "fake-entra-signing-key";  // HS256, shared with fake-eventhubs
  std::chrono::seconds lifetime{3600};
};

/// What the next answers do instead of issuing a token.
enum class TokenFault { None, AadstsError, ServerError, MalformedJson, NoExpiry, Slow };

struct IssuedToken {
  std::string flow;      // "client_secret", "workload_identity", "app_service", "imds"
  std::string resource;  // "https://eventhubs.azure.net"
  std::string token;
  long long expires_on = 0;  // Unix seconds
};

/// Serves on 127.0.0.1 (certificate for localhost and 127.0.0.1, signed by certificates().ca_cert).
/// Thread-safe: handlers run on the server's threads, the test reads from its own.
class FakeTokenService {
 public:
  explicit FakeTokenService(FakeTokenServiceOptions options = {});
  ~FakeTokenService();
  FakeTokenService(const FakeTokenService&) = delete;
  FakeTokenService& operator=(const FakeTokenService&) = delete;

  std::uint16_t port() const { return port_; }
  std::string authority() const;          // AZURE_AUTHORITY_HOST: "https://localhost:PORT/"
  std::string imds_host() const;          // AZURE_POD_IDENTITY_AUTHORITY_HOST: "https://localhost:PORT"
  std::string identity_endpoint() const;  // IDENTITY_ENDPOINT: "https://localhost:PORT/msi/token"
  const TlsCertificates& certificates() const { return certificates_; }
  const FakeTokenServiceOptions& options() const { return options_; }

  /// The next `count` token requests (all of them with -1) get `fault`.
  void set_fault(TokenFault fault, int count = -1);
  void set_lifetime(std::chrono::seconds lifetime);
  /// Runs before a token is returned (e.g. to add it to a Redis ACL user), on a server thread.
  void set_on_issue(std::function<void(const IssuedToken&)> hook);

  std::vector<IssuedToken> issued() const;
  /// Requests that did not match what the flow must send, one sentence each; empty when all were right.
  std::vector<std::string> request_errors() const;
  /// Token requests received so far, answered or not.
  std::size_t requests() const;

 private:
  struct State;
  FakeTokenServiceOptions options_;
  TlsCertificates certificates_;
  std::shared_ptr<State> state_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace connector::testing
