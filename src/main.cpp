// redis-eventhubs-connector: parse the configuration, run the connector, map errors to exit statuses.
#include <cstdio>
#include <exception>

#include "app/connector_app.hpp"
#include "common/errors.hpp"
#include "config/config_loader.hpp"
#include "observability/logger.hpp"

int main(int argc, char* argv[]) {
  using namespace connector;
  // Before any thread exists, so that every thread inherits the mask and signals are taken in one place.
  block_signals();
  CommandLine command_line;
  try {
    command_line = parse_command_line(argc, argv, current_environment());
  } catch (const ConfigurationError& error) {
    report_configuration_error(error);
    return kExitInvalidConfiguration;
  }
  switch (command_line.action) {
    case CliAction::PrintHelp:
    case CliAction::PrintVersion:
      std::fputs(command_line.text.c_str(), stdout);
      return kExitOk;
    case CliAction::CheckConfig:
      std::fputs(describe_config(command_line.config).c_str(), stdout);
      return kExitOk;
    case CliAction::Run:
      break;
  }
  set_logger_options(command_line.config.log_level, command_line.config.log_format);
  try {
    return run_connector(command_line.config);
  } catch (const std::exception& error) {
    logger().fatal("unexpected_error", {{"error", error.what()}});
    return kExitFatal;
  }
}
