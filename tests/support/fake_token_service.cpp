#include "support/fake_token_service.hpp"

#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "stand_ins/hs256_jwt.hpp"

namespace connector::testing {

namespace {
constexpr const char* kAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

bool known_resource(const std::string& resource) {
  return resource == "https://eventhubs.azure.net" || resource == "https://redis.azure.com";
}

/// One test PKI per test process: making RSA keys is the slowest part of starting a stand-in.
const TlsCertificates& shared_certificates() {
  static const TempDir dir;  // removed at exit
  static const TlsCertificates pki = make_test_certificates(dir.path());
  return pki;
}

long long unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

struct FakeTokenService::State {
  mutable std::mutex mutex;  // guards everything below
  TokenFault fault = TokenFault::None;
  int fault_count = 0;
  std::chrono::seconds lifetime{3600};
  std::function<void(const IssuedToken&)> on_issue;
  std::vector<IssuedToken> issued;
  std::vector<std::string> errors;
  std::size_t requests = 0;
};

FakeTokenService::FakeTokenService(FakeTokenServiceOptions options)
    : options_(std::move(options)), certificates_(shared_certificates()), state_(std::make_shared<State>()) {
  state_->lifetime = options_.lifetime;
  server_ = std::make_unique<httplib::SSLServer>(certificates_.server_cert.c_str(),
                                                 certificates_.server_key.c_str());
  if (!server_->is_valid()) throw std::runtime_error("fake token service: cannot load the test certificate");

  // Answers one token request: a fault, or a signed JWT for `resource` in the flow's JSON shape.
  auto answer = [this](httplib::Response& res, const std::string& flow, const std::string& resource) {
    TokenFault fault;
    std::chrono::seconds lifetime;
    std::function<void(const IssuedToken&)> hook;
    {
      std::lock_guard lock(state_->mutex);
      fault = state_->fault;
      if (state_->fault_count > 0 && --state_->fault_count == 0) state_->fault = TokenFault::None;
      lifetime = state_->lifetime;
      hook = state_->on_issue;
    }
    switch (fault) {
      case TokenFault::AadstsError:
        res.status = 400;
        res.set_content(
            R"({"error":"unauthorized_client","error_description":"AADSTS700016: Application with identifier 'test-client-id' was not found in the directory 'test-tenant'.\r\nTrace ID: 0000\r\nCorrelation ID: 1111","error_codes":[700016]})",
            "application/json");
        return;
      case TokenFault::ServerError:
        res.status = 500;
        res.set_content("upstream failure", "text/plain");
        return;
      case TokenFault::MalformedJson:
        res.set_content(R"({"access_token": "abc", "expires_in": )", "application/json");
        return;
      case TokenFault::Slow:
        std::this_thread::sleep_for(std::chrono::seconds(3));
        break;
      case TokenFault::NoExpiry:
      case TokenFault::None:
        break;
    }
    const long long now = unix_now();
    IssuedToken issued{flow, resource,
                       sign_jwt_hs256({{"aud", resource},
                                       {"iss", "https://sts.windows.net/" + options_.tenant_id + "/"},
                                       {"tid", options_.tenant_id},
                                       {"oid", options_.object_id},
                                       {"iat", now},
                                       {"exp", now + lifetime.count()},
                                       {"jti", std::to_string(now) + "-" + std::to_string(std::rand())}},
                                      options_.signing_key),
                       now + lifetime.count()};
    if (hook) hook(issued);
    nlohmann::json body = {{"access_token", issued.token}, {"token_type", "Bearer"}};
    if (fault != TokenFault::NoExpiry) {
      if (flow == "app_service" || flow == "imds") {
        // Managed identity answers carry strings, as the real endpoints do.
        body["expires_on"] = std::to_string(issued.expires_on);
        body["expires_in"] = std::to_string(lifetime.count());
        body["resource"] = resource;
      } else {
        body["expires_in"] = lifetime.count();
        body["ext_expires_in"] = lifetime.count();
      }
    }
    {
      std::lock_guard lock(state_->mutex);
      state_->issued.push_back(issued);
    }
    res.set_content(body.dump(), "application/json");
  };
  auto reject = [this](httplib::Response& res, const std::string& why) {
    {
      std::lock_guard lock(state_->mutex);
      state_->errors.push_back(why);
    }
    res.status = 401;
    res.set_content(
        nlohmann::json{{"error", "invalid_request"}, {"error_description", "AADSTS90000: " + why}}.dump(),
        "application/json");
  };
  auto count = [this] {
    std::lock_guard lock(state_->mutex);
    ++state_->requests;
  };

  server_->Post("/" + options_.tenant_id + "/oauth2/v2.0/token", [=, this](const httplib::Request& req,
                                                                           httplib::Response& res) {
    count();
    if (req.get_header_value("Content-Type") != "application/x-www-form-urlencoded") {
      return reject(res, "content type is not application/x-www-form-urlencoded");
    }
    if (req.get_param_value("grant_type") != "client_credentials")
      return reject(res, "grant_type is not client_credentials");
    if (req.get_param_value("client_id") != options_.client_id) return reject(res, "client_id is wrong");
    const std::string scope = req.get_param_value("scope");
    const auto slash = scope.rfind("/.default");
    if (slash == std::string::npos || slash + 9 != scope.size() || !known_resource(scope.substr(0, slash))) {
      return reject(res, "scope '" + scope + "' is not a known resource's /.default");
    }
    std::string flow;
    if (req.has_param("client_secret")) {
      if (req.has_param("client_assertion")) return reject(res, "both client_secret and client_assertion");
      if (req.get_param_value("client_secret") != options_.client_secret)
        return reject(res, "client_secret is wrong");
      flow = "client_secret";
    } else {
      if (req.get_param_value("client_assertion_type") != kAssertionType)
        return reject(res, "client_assertion_type is wrong");
      std::ifstream file(options_.assertion_file);
      std::stringstream contents;
      contents << file.rdbuf();
      std::string expected = contents.str();
      while (!expected.empty() && expected.back() == '\n') expected.pop_back();
      if (options_.assertion_file.empty() || req.get_param_value("client_assertion") != expected) {
        return reject(res, "client_assertion is not the token file's current contents");
      }
      flow = "workload_identity";
    }
    answer(res, flow, scope.substr(0, slash));
  });

  auto managed = [=, this](const httplib::Request& req, httplib::Response& res, const std::string& flow,
                           const std::string& api_version) {
    count();
    if (flow == "imds" && req.get_header_value("Metadata") != "true")
      return reject(res, "no 'Metadata: true' header");
    if (flow == "app_service" && req.get_header_value("X-IDENTITY-HEADER") != options_.identity_header) {
      return reject(res, "X-IDENTITY-HEADER is missing or wrong");
    }
    if (req.get_param_value("api-version") != api_version)
      return reject(res, "api-version is not " + api_version);
    if (req.get_param_value("client_id") != options_.managed_client_id)
      return reject(res, "client_id is wrong");
    const std::string resource = req.get_param_value("resource");
    if (!known_resource(resource)) return reject(res, "resource '" + resource + "' is unknown");
    answer(res, flow, resource);
  };
  server_->Get("/metadata/identity/oauth2/token", [=](const httplib::Request& req, httplib::Response& res) {
    managed(req, res, "imds", "2018-02-01");
  });
  server_->Get("/msi/token", [=](const httplib::Request& req, httplib::Response& res) {
    managed(req, res, "app_service", "2019-08-01");
  });

  const int port = server_->bind_to_any_port("127.0.0.1");
  if (port <= 0) throw std::runtime_error("fake token service: cannot bind to 127.0.0.1");
  port_ = static_cast<std::uint16_t>(port);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // The socket listens from bind on: a client connecting before the loop runs waits in the backlog.
}

FakeTokenService::~FakeTokenService() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string FakeTokenService::authority() const { return "https://localhost:" + std::to_string(port_) + "/"; }
std::string FakeTokenService::imds_host() const { return "https://localhost:" + std::to_string(port_); }
std::string FakeTokenService::identity_endpoint() const {
  return "https://localhost:" + std::to_string(port_) + "/msi/token";
}

void FakeTokenService::set_fault(TokenFault fault, int count) {
  std::lock_guard lock(state_->mutex);
  state_->fault = fault;
  state_->fault_count = count;
}

void FakeTokenService::set_lifetime(std::chrono::seconds lifetime) {
  std::lock_guard lock(state_->mutex);
  state_->lifetime = lifetime;
}

void FakeTokenService::set_on_issue(std::function<void(const IssuedToken&)> hook) {
  std::lock_guard lock(state_->mutex);
  state_->on_issue = std::move(hook);
}

std::vector<IssuedToken> FakeTokenService::issued() const {
  std::lock_guard lock(state_->mutex);
  return state_->issued;
}

std::vector<std::string> FakeTokenService::request_errors() const {
  std::lock_guard lock(state_->mutex);
  return state_->errors;
}

std::size_t FakeTokenService::requests() const {
  std::lock_guard lock(state_->mutex);
  return state_->requests;
}

}  // namespace connector::testing
