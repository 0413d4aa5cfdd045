#include "common/errors.hpp"

namespace connector {
namespace {
std::string join_problems(const std::vector<std::string>& problems) {
  std::string text = "Invalid configuration:";
  for (const auto& problem : problems) {
    text += "\n  - ";
    text += problem;
  }
  return text;
}
}  // namespace

ConfigurationError::ConfigurationError(std::vector<std::string> problems)
    : ConnectorError(join_problems(problems)), problems_(std::move(problems)) {}

}  // namespace connector
