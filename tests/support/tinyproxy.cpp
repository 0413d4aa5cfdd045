#include "support/tinyproxy.hpp"

#include <signal.h>

#include <fstream>
#include <stdexcept>

namespace connector::testing {

TinyProxy::TinyProxy(const TinyProxyOptions& options) : port_(free_port()) {
  const auto config = dir_.path() / "tinyproxy.conf";
  {
    std::ofstream out(config);
    out << "Port " << port_
        << "\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 60\nMaxClients 50\nLogLevel Connect\n";
    for (const std::uint16_t port : options.connect_ports) out << "ConnectPort " << port << "\n";
    if (options.basic_auth)
      out << "BasicAuth " << options.basic_auth->first << " " << options.basic_auth->second << "\n";
  }
  // -d: in the foreground, logging to stderr (no LogFile, no Syslog in the config).
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/tinyproxy", "-d", "-c", config.string()},
      dir_.path() / "tinyproxy.log");
  if (!wait_until([&] { return port_accepts(port_) || !process_->running(); }, std::chrono::seconds(10)) ||
      !process_->running()) {
    throw std::runtime_error("tinyproxy did not start on port " + std::to_string(port_) +
                             " (scripts/setup.sh installs it):\n" + process_->log());
  }
}

TinyProxy::~TinyProxy() {
  process_->signal(SIGTERM);
  if (process_->wait(std::chrono::seconds(5)) < 0) process_->kill();
}

std::string TinyProxy::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

}  // namespace connector::testing
