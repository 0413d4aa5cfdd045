#pragma once
// One HTTP(S) request to a token endpoint. The only file that includes httplib.h in the core library;
// its CPPHTTPLIB_* definitions come from the cpp-httplib pkg-config target, so every user agrees on them.
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace connector {

struct HttpRequest {
  std::string method = "GET";  // GET or POST
  std::string url;             // http(s)://host[:port]/path[?query]
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // POST only; may hold a secret
  std::string content_type = "application/x-www-form-urlencoded";
};

struct HttpResponse {
  int status = 0;
  std::string body;
};

/// The scheme, host and port of a URL without its path ("https://login.microsoftonline.com:443"), for
/// messages; throws std::invalid_argument when the URL is not http(s)://host…
std::string url_origin(const std::string& url);

/// Sends requests with certificate and host-name verification on: the system store, plus `ca_file`
/// when it is set. Stateless apart from its settings, so one client may serve several threads.
class HttpClient {
 public:
  HttpClient(std::string ca_file, std::chrono::milliseconds timeout);

  /// The answer, whatever its status; throws IdentityError naming the origin and the cause when no
  /// answer came (refused, timeout, TLS). The message never holds the body or query of the request.
  HttpResponse send(const HttpRequest& request) const;

 private:
  std::string ca_file_;
  std::chrono::milliseconds timeout_;
};

}  // namespace connector
