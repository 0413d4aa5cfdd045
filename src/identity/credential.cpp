#include "identity/credential.hpp"

#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "common/errors.hpp"
#include "common/url_encoding.hpp"

namespace connector {
namespace {

using std::chrono::system_clock;

constexpr std::string_view kAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A JSON number or a string of digits, as integer seconds; nullopt otherwise.
std::optional<long long> seconds_value(const nlohmann::json& value) {
  if (value.is_number_integer()) return value.get<long long>();
  if (value.is_number_float()) return static_cast<long long>(value.get<double>());
  if (!value.is_string()) return std::nullopt;
  const auto& text = value.get_ref<const std::string&>();
  long long number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return number;
}

/// The resource of a scope: managed identity asks for "https://eventhubs.azure.net", not ".../.default".
std::string resource_of(const std::string& scope) {
  constexpr std::string_view kSuffix = "/.default";
  return scope.ends_with(kSuffix) ? scope.substr(0, scope.size() - kSuffix.size()) : scope;
}

std::string with_trailing_slash(std::string url) {
  if (url.empty() || url.back() != '/') url.push_back('/');
  return url;
}

std::string without_trailing_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

/// Replaces every occurrence of the secrets in `text` by "***": a service may quote what it was sent.
std::string scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    if (secret.size() < 4) continue;
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3)) {
      text.replace(at, secret.size(), "***");
    }
  }
  return text;
}

/// The part every credential shares: send, then read the token or explain the failure.
class HttpCredential : public TokenCredential {
 public:
  HttpCredential(std::string ca_file, std::chrono::milliseconds timeout)
      : http_(std::move(ca_file), timeout) {}

 protected:
  /// `flow` names the credential in messages, `hint` says what to check when the service refuses.
  AccessToken fetch(const HttpRequest& request, std::string_view flow, std::string_view hint,
                    const std::vector<std::string>& secrets) const {
    const std::string origin = url_origin(request.url);
    HttpResponse response;
    try {
      response = http_.send(request);
    } catch (const IdentityError& e) {
      throw IdentityError(fmt::format("{}: no answer from the token endpoint {}: {}", flow, origin,
                                      scrub(e.what(), secrets)));
    }
    if (response.status != 200) {
      // 4xx: our request or identity is wrong; 5xx: the service failed and a later try may work.
      throw IdentityError(fmt::format("{}: the token endpoint {} {} ({}); {}", flow, origin,
                                      response.status >= 500 ? "failed" : "refused the request",
                                      scrub(describe_error_response(response.status, response.body), secrets),
                                      response.status >= 500 ? std::string_view("it is retried") : hint));
    }
    try {
      return parse_token_response(response.body, system_clock::now());
    } catch (const std::runtime_error& e) {
      throw IdentityError(fmt::format("{}: the answer of {} is unusable: {}", flow, origin, e.what()));
    }
  }

 private:
  HttpClient http_;
};

/// OAuth 2.0 client credentials against `<authority>/<tenant>/oauth2/v2.0/token`, proven by a client
/// secret or by the federated token file (workload identity), which is read again for every request
/// because the kubelet rotates it.
class ClientCredentialsFlow final : public HttpCredential {
 public:
  ClientCredentialsFlow(const EntraSettings& s, std::chrono::milliseconds timeout)
      : HttpCredential(s.ca_file, timeout),
        settings_(s),
        token_url_(with_trailing_slash(s.authority_host) + s.tenant_id + "/oauth2/v2.0/token") {}

  AccessToken get_token(const std::string& scope) const override {
    HttpRequest request;
    request.method = "POST";
    request.url = token_url_;
    std::string body = "grant_type=client_credentials&client_id=" + url_encode(settings_.client_id) +
                       "&scope=" + url_encode(scope);
    std::vector<std::string> secrets;
    if (workload()) {
      std::string assertion = read_assertion();
      body += "&client_assertion_type=" + url_encode(kAssertionType) +
              "&client_assertion=" + url_encode(assertion);
      secrets.push_back(std::move(assertion));
    } else {
      body += "&client_secret=" + url_encode(settings_.client_secret);
      secrets.push_back(settings_.client_secret);
    }
    request.body = std::move(body);
    return fetch(request, flow(),
                 workload() ? "check AZURE_CLIENT_ID, AZURE_TENANT_ID and the federated credential of the "
                              "identity (issuer and subject of the service account)"
                            : "check AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET",
                 secrets);
  }

  std::string describe() const override { return settings_.describe(); }

 private:
  bool workload() const { return settings_.kind() == EntraCredentialKind::WorkloadIdentity; }
  std::string flow() const { return workload() ? "WorkloadIdentityCredential" : "ClientSecretCredential"; }

  std::string read_assertion() const {
    std::ifstream file(settings_.federated_token_file, std::ios::binary);
    std::stringstream contents;
    if (file) contents << file.rdbuf();
    std::string assertion = contents.str();
    while (!assertion.empty() &&
           (assertion.back() == '\n' || assertion.back() == '\r' || assertion.back() == ' ')) {
      assertion.pop_back();
    }
    if (!file || assertion.empty()) {
      throw IdentityError(
          fmt::format("WorkloadIdentityCredential: cannot read a token from AZURE_FEDERATED_TOKEN_FILE "
                      "'{}' (missing or empty); check the service account token projection",
                      settings_.federated_token_file));
    }
    return assertion;
  }

  EntraSettings settings_;
  std::string token_url_;
};

/// Managed identity: the App Service / Container Apps endpoint, or the instance metadata service.
class ManagedIdentityFlow final : public HttpCredential {
 public:
  ManagedIdentityFlow(const EntraSettings& s, std::chrono::milliseconds timeout)
      : HttpCredential(s.ca_file, timeout), settings_(s) {}

  AccessToken get_token(const std::string& scope) const override {
    HttpRequest request;
    const std::string client =
        settings_.client_id.empty() ? "" : "&client_id=" + url_encode(settings_.client_id);
    std::vector<std::string> secrets;
    if (app_service()) {
      request.url = settings_.identity_endpoint +
                    (settings_.identity_endpoint.find('?') == std::string::npos ? "?" : "&") +
                    "api-version=2019-08-01&resource=" + url_encode(resource_of(scope)) + client;
      request.headers = {{"X-IDENTITY-HEADER", settings_.identity_header}};
      secrets.push_back(settings_.identity_header);
    } else {
      request.url = without_trailing_slash(settings_.imds_host) +
                    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" +
                    url_encode(resource_of(scope)) + client;
      request.headers = {{"Metadata", "true"}};
    }
    return fetch(
        request,
        app_service() ? "ManagedIdentityCredential (App Service)" : "ManagedIdentityCredential (IMDS)",
        "check that the identity is enabled on this resource" +
            std::string(settings_.client_id.empty()
                            ? ""
                            : " and that AZURE_CLIENT_ID is a user-assigned identity of it"),
        secrets);
  }

  std::string describe() const override { return settings_.describe(); }

 private:
  bool app_service() const { return settings_.kind() == EntraCredentialKind::ManagedIdentityAppService; }
  EntraSettings settings_;
};

}  // namespace

AccessToken parse_token_response(std::string_view body, system_clock::time_point now) {
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded() || !json.is_object()) throw std::runtime_error("the body is not a JSON object");
  const auto token = json.find("access_token");
  if (token == json.end() || !token->is_string() || token->get_ref<const std::string&>().empty()) {
    throw std::runtime_error("no access_token in the answer");
  }
  AccessToken result{token->get<std::string>(), {}};
  if (const auto on = json.find("expires_on"); on != json.end()) {
    if (const auto seconds = seconds_value(*on)) {
      result.expires_on = system_clock::time_point(std::chrono::seconds(*seconds));
      return result;
    }
  }
  if (const auto in = json.find("expires_in"); in != json.end()) {
    if (const auto seconds = seconds_value(*in)) {
      result.expires_on = now + std::chrono::seconds(*seconds);
      return result;
    }
  }
  throw std::runtime_error("the answer has neither expires_in nor expires_on as a number of seconds");
}

std::string describe_error_response(int status, std::string_view body) {
  std::string text = fmt::format("HTTP {}", status);
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_object()) {
    // Managed identity endpoints answer either OAuth's flat shape or {"error":{"code","message"}}.
    const auto flat = [&](const char* key) {
      const auto it = json.find(key);
      return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    std::string error = flat("error");
    std::string description = flat("error_description");
    if (const auto nested = json.find("error"); nested != json.end() && nested->is_object()) {
      error = nested->value("code", "");
      description = nested->value("message", "");
    }
    if (!error.empty()) text += ": " + error;
    if (!description.empty()) {
      // The description ends with trace and correlation IDs on lines of their own; the first line says it.
      text += ": " + description.substr(0, description.find_first_of("\r\n"));
    }
  }
  return text;
}

std::unique_ptr<TokenCredential> make_credential(const EntraSettings& settings,
                                                 std::chrono::milliseconds timeout) {
  switch (settings.kind()) {
    case EntraCredentialKind::ClientSecret:
    case EntraCredentialKind::WorkloadIdentity:
      return std::make_unique<ClientCredentialsFlow>(settings, timeout);
    case EntraCredentialKind::ManagedIdentityAppService:
    case EntraCredentialKind::ManagedIdentityImds:
      return std::make_unique<ManagedIdentityFlow>(settings, timeout);
  }
  throw std::logic_error("unknown Entra credential kind");
}

}  // namespace connector
