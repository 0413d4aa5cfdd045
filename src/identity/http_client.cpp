#include "identity/http_client.hpp"

#include <httplib.h>
#include <openssl/x509_vfy.h>

#include <stdexcept>

#include "common/errors.hpp"

namespace connector {
namespace {

/// The URL up to its path: never its query, which may name a client ID, nor anything after it.
std::string url_origin_unchecked(const std::string& url) {
  const auto scheme = url.find("://");
  const auto end = url.find_first_of("/?", scheme == std::string::npos ? 0 : scheme + 3);
  return url.substr(0, end);
}

struct UrlParts {
  std::string origin;  // scheme://host[:port]
  std::string target;  // /path?query
  bool https = false;
};

UrlParts split_url(const std::string& url) {
  UrlParts parts;
  std::size_t rest = 0;
  if (url.rfind("https://", 0) == 0) {
    parts.https = true;
    rest = 8;
  } else if (url.rfind("http://", 0) == 0) {
    rest = 7;
  } else {
    throw std::invalid_argument("'" + url_origin_unchecked(url) + "' is not an http:// or https:// URL");
  }
  const auto slash = url.find_first_of("/?", rest);
  parts.origin = url.substr(0, slash);
  if (parts.origin.size() == rest) throw std::invalid_argument("the URL has no host");
  // A query right after the host ("https://h?x") still needs the path "/". assign(1, '/'), not = "/"
  // or insert(0, "/"): those trip GCC 12's -O3 -Wrestrict false positive (GCC bug 105651).
  if (slash == std::string::npos || url[slash] == '?') {
    parts.target.assign(1, '/');
    if (slash != std::string::npos) parts.target.append(url, slash);
  } else {
    parts.target = url.substr(slash);
  }
  return parts;
}

std::string describe_error(httplib::Error error, long verify_result) {
  switch (error) {
    case httplib::Error::Connection:
      return "could not connect (refused or unreachable)";
    case httplib::Error::ConnectionTimeout:
      return "connect timed out";
    case httplib::Error::Read:
      return "no answer in time (read failed or timed out)";
    case httplib::Error::Write:
      return "the request could not be written";
    case httplib::Error::SSLConnection:
      return "TLS handshake failed";
    case httplib::Error::SSLServerVerification:
      return std::string("certificate verify failed: ") +
             X509_verify_cert_error_string(verify_result == 0 ? X509_V_ERR_HOSTNAME_MISMATCH
                                                              : verify_result) +
             "; check AZURE_IDENTITY_TLS_CA_FILE";
    default:
      return httplib::to_string(error);
  }
}

}  // namespace

std::string url_origin(const std::string& url) { return split_url(url).origin; }

HttpClient::HttpClient(std::string ca_file, std::chrono::milliseconds timeout)
    : ca_file_(std::move(ca_file)), timeout_(timeout) {}

HttpResponse HttpClient::send(const HttpRequest& request) const {
  UrlParts parts;
  try {
    parts = split_url(request.url);
  } catch (const std::invalid_argument& e) {
    throw IdentityError(std::string("cannot send a token request: ") + e.what());
  }
  httplib::Client client(parts.origin);
  const auto seconds = timeout_.count() / 1000;
  const auto micros = (timeout_.count() % 1000) * 1000;
  client.set_connection_timeout(seconds, micros);
  client.set_read_timeout(seconds, micros);
  client.set_write_timeout(seconds, micros);
  client.set_follow_location(false);
  if (parts.https) {
    client.enable_server_certificate_verification(true);
    if (!ca_file_.empty()) {
      // The system store and the extra CA together: httplib's own CA-file option would replace the store.
      X509_STORE* store = X509_STORE_new();
      if (store == nullptr || X509_STORE_set_default_paths(store) != 1 ||
          X509_STORE_load_file(store, ca_file_.c_str()) != 1) {
        if (store != nullptr) X509_STORE_free(store);
        throw IdentityError("cannot load the CA file '" + ca_file_ + "'; check AZURE_IDENTITY_TLS_CA_FILE");
      }
      client.set_ca_cert_store(store);  // the client owns it from here
    }
  }
  httplib::Headers headers;
  for (const auto& [name, value] : request.headers) headers.emplace(name, value);
  httplib::Result result = request.method == "POST"
                               ? client.Post(parts.target, headers, request.body, request.content_type)
                               : client.Get(parts.target, headers);
  if (!result) {
    throw IdentityError(parts.origin + ": " +
                        describe_error(result.error(), client.get_openssl_verify_result()));
  }
  return HttpResponse{result->status, result->body};
}

}  // namespace connector
