#pragma once
// Builds the one Config from command-line flags > environment > `.env`.
#include <map>
#include <string>

#include "common/errors.hpp"
#include "config/config.hpp"

namespace connector {

/// Variables by name, as the process received them (or as a test makes them up).
using Environment = std::map<std::string, std::string>;

/// The process environment (`environ`) as an Environment.
Environment current_environment();

/// What main() should do after parsing the command line.
enum class CliAction { Run, CheckConfig, PrintHelp, PrintVersion };

/// The parsed command line: the action, the validated Config (Run, CheckConfig) and help or version text.
struct CommandLine {
  CliAction action = CliAction::Run;
  Config config;
  std::string text;  // help or version text
};

/// Parses flags, then resolves every setting as flag > `environment` > `.env` (./.env, or --env-file) >
/// default; a variable that is present but empty counts as unset. Throws ConfigurationError listing every
/// problem at once. Reads nothing but argv, `environment`, the .env file and the files settings name.
CommandLine parse_command_line(int argc, const char* const argv[], const Environment& environment);

/// Every setting at its settings-table default, the required ones empty: what an empty environment
/// resolves to, without its problems. For tools and tests that build parts without a command line.
Config default_config();

/// Tells the user about invalid configuration once: as a readable list on a terminal, else as one
/// `invalid_configuration` log line (where log collectors look; a second copy would only repeat it).
void report_configuration_error(const ConfigurationError& error);

/// The effective configuration as `VARIABLE=value` lines, for --check-config; secrets are shown as "***".
std::string describe_config(const Config& config);

}  // namespace connector
