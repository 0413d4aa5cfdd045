#include "observability/http_server.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <cerrno>

#include "common/errno_text.hpp"
#include "common/errors.hpp"

namespace connector {
namespace {
constexpr std::size_t kMaxPathBytes = 1024;  // every path served is a few bytes; longer ones get 414
constexpr int kWorkerThreads = 2;

bool known_path(const std::string& path) {
  return path == "/metrics" || path == "/healthz" || path == "/readyz";
}

void answer_probe(const ProbeResult& result, httplib::Response& response) {
  response.status = result.ok ? 200 : 503;
  response.set_header("Cache-Control", "no-store");
  response.set_content(probe_body(result), "application/json");
}
}  // namespace

HttpServer::HttpServer(HttpAddress address, HttpHandlers handlers)
    : address_(std::move(address)), handlers_(std::move(handlers)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  server_ = std::make_unique<httplib::Server>();
  auto& server = *server_;
  server.new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  server.set_read_timeout(std::chrono::seconds(5));
  server.set_write_timeout(std::chrono::seconds(5));
  server.set_idle_interval(std::chrono::milliseconds(0));
  server.set_keep_alive_max_count(20);
  server.set_keep_alive_timeout(5);
  server.set_payload_max_length(1024);  // GET only: nothing reads a body
  server.set_pre_routing_handler([](const httplib::Request& request, httplib::Response& response) {
    if (request.path.size() > kMaxPathBytes || request.target.size() > kMaxPathBytes) {
      response.status = 414;
      response.set_content("URI too long\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!known_path(request.path)) {
      response.status = 404;
      response.set_content("not found: the endpoint serves /metrics, /healthz and /readyz\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (request.method != "GET" && request.method != "HEAD") {
      response.status = 405;
      response.set_header("Allow", "GET, HEAD");
      response.set_content("method not allowed: only GET\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    response.set_header("Cache-Control", "no-store");
    response.set_content(handlers_.metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/healthz", [this](const httplib::Request&, httplib::Response& response) {
    answer_probe(handlers_.liveness(), response);
  });
  server.Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
    answer_probe(handlers_.readiness(), response);
  });

  const std::string shown = address_.describe();
  errno = 0;
  if (!server.bind_to_port(address_.host, address_.port)) {
    const int error = errno;
    server_.reset();
    throw ListenError(
        fmt::format("cannot listen on HTTP_ADDRESS {}: {}; free the port, pick another host:port, or set "
                    "HTTP_ADDRESS=off",
                    shown, error != 0 ? errno_text(error) : "the address cannot be bound"));
  }
  port_ = address_.port;
  loop_returned_ = false;
  thread_ = std::thread([this, &server] {
    server.listen_after_bind();
    loop_returned_ = true;
  });
}

void HttpServer::stop() {
  if (!server_) return;
  // httplib's stop() does nothing until its accept loop runs, so a stop() in the microseconds between
  // start() and the loop's start would leave the join hanging: wait out that window here, where it is
  // rare, instead of delaying every start().
  while (!server_->is_running() && !loop_returned_) std::this_thread::yield();
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace connector
