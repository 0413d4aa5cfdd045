#pragma once
// The settings table (DESIGN.md "Configuration"): one row per setting, the one place that holds its
// variable, default, validation and help. The loader, --help, --check-config and the README follow it.
#include <span>
#include <string_view>

namespace connector {

/// How a setting's value is checked and converted; also the placeholder --help shows after the flag.
enum class SettingKind { Text, Path, Bool, Number, Millis, Choice };

/// One row of the table. The flag is the variable in kebab case (`--batch-size` for BATCH_SIZE).
struct Setting {
  std::string_view variable{};
  std::string_view group{};  // --help section
  SettingKind kind = SettingKind::Text;
  /// What an unset setting resolves to, converted exactly as a given value is. Empty: no literal default.
  std::string_view default_value{};
  /// Without a literal default, what takes its place in words: "required", "from REDIS_URL", …
  std::string_view default_note{};
  long long min = 0;  // Number and Millis: the accepted range
  long long max = 0;
  std::string_view help{};
  bool secret = false;  // never printed; --check-config shows "***"

  bool required() const { return default_note == "required"; }
  /// The default as --help and the README show it: the value, else the note (empty: none).
  std::string_view default_text() const { return default_value.empty() ? default_note : default_value; }
};

/// Every setting, in --help and --check-config order.
std::span<const Setting> settings();

/// The row of `variable`. Throws std::logic_error for a variable the table does not have (a bug).
const Setting& setting(std::string_view variable);

}  // namespace connector
