#pragma once
// The settings table: one row per setting, the one place that holds its
// variable, default, validation, help and the Config member its value goes to. The loader, --help,
// --check-config and the README follow it. A new setting is one row in settings.cpp and one Config member.
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace connector {

struct Config;
struct Setting;

/// How a setting's value is checked and converted; also the placeholder --help shows after the flag.
enum class SettingKind { Text, Path, Bool, Number, Millis, Choice };

/// One word a Choice row accepts (in any letter case) and the enum value it stands for.
struct SettingChoice {
  std::string_view word{};
  int value = 0;
};

/// A value converted by its row's kind: a whole number (Number, Millis, a Choice's enum value), a
/// boolean (Bool) or text (Text, Path; empty when unset).
using SettingValue = std::variant<long long, bool, std::string>;

/// Where a row's value goes. `store` writes a converted value into Config and may throw
/// std::invalid_argument (the message becomes the setting's problem); without one, the loader's
/// finalize step reads the setting, as it needs other settings first. `show` is the value as
/// --check-config prints it, never a secret.
struct SettingBinding {
  void (*store)(Config&, const SettingValue&) = nullptr;
  std::string (*show)(const Setting&, const Config&) = nullptr;
};

/// One row of the table. The flag is the variable in kebab case (`--batch-size` for BATCH_SIZE).
struct Setting {
  std::string_view variable{};
  /// Another name the setting is read under in the environment and the .env file, after its own (the
  /// lower-case https_proxy that curl and the SDKs read too); never a flag.
  std::string_view alias{};
  std::string_view group{};  // --help section
  SettingKind kind = SettingKind::Text;
  /// What an unset setting resolves to, converted exactly as a given value is. Empty: no literal default.
  std::string_view default_value{};
  /// Without a literal default, what takes its place in words: "required", "from REDIS_URL", …
  std::string_view default_note{};
  long long min = 0;  // Number and Millis: the accepted range
  long long max = 0;
  std::span<const SettingChoice> choices{};  // Choice: the accepted words, in --help order
  std::string_view help{};
  bool secret = false;  // never printed; --check-config shows "***"
  SettingBinding binding{};

  bool required() const { return default_note == "required"; }
  /// Microsoft Entra ID rows are read only when something authenticates with Entra ID.
  bool entra() const { return group == "Microsoft Entra ID"; }
  /// The default as --help and the README show it: the value, else the note (empty: none).
  std::string_view default_text() const { return default_value.empty() ? default_note : default_value; }
  /// Choice: the word of an enum value (empty for a value the row does not have).
  std::string_view word(long long value) const {
    for (const auto& choice : choices) {
      if (choice.value == value) return choice.word;
    }
    return {};
  }
};

/// Every setting, in --help and --check-config order.
std::span<const Setting> settings();

/// The row of `variable`. Throws std::logic_error for a variable the table does not have (a bug).
const Setting& setting(std::string_view variable);

}  // namespace connector
