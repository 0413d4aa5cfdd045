#pragma once
// Bindings of settings-table rows to Config members, written once per member type: how a converted
// value is stored, and how the member is shown back by --check-config.
#include <chrono>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>

#include "config/config.hpp"
#include "config/settings.hpp"

namespace connector::binding {

template <typename T>
struct is_optional : std::false_type {};
template <typename T>
struct is_optional<std::optional<T>> : std::true_type {};

/// The member at the end of a path of pointers to members, outermost first. An optional struct on the
/// way is created: a row is stored into it only when the part it describes is in use.
template <auto First, auto... Rest, typename Object>
auto& member(Object& object) {
  auto& next = object.*First;
  if constexpr (sizeof...(Rest) == 0) {
    return next;
  } else if constexpr (is_optional<std::remove_cvref_t<decltype(next)>>::value) {
    return member<Rest...>(next ? *next : next.emplace());
  } else {
    return member<Rest...>(next);
  }
}

/// The member at the end of the path, or nullptr when an optional struct on the way is empty.
template <auto First, auto... Rest, typename Object>
auto find_member(const Object& object) {
  const auto& next = object.*First;
  if constexpr (sizeof...(Rest) == 0) {
    return &next;
  } else if constexpr (is_optional<std::remove_cvref_t<decltype(next)>>::value) {
    return next ? find_member<Rest...>(*next) : nullptr;
  } else {
    return find_member<Rest...>(next);
  }
}

/// A converted value as a member of type T.
template <typename T>
T from_value(const SettingValue& value) {
  if constexpr (std::is_same_v<T, bool>) {
    // A Choice row may select between two behaviours (REDIS_AUTH): its value is then 0 or 1.
    return std::holds_alternative<bool>(value) ? std::get<bool>(value) : std::get<long long>(value) != 0;
  } else if constexpr (std::is_enum_v<T> || std::is_integral_v<T>) {
    return static_cast<T>(std::get<long long>(value));
  } else if constexpr (std::is_same_v<T, std::chrono::milliseconds>) {
    return T(std::get<long long>(value));
  } else if constexpr (is_optional<T>::value) {
    const auto& text = std::get<std::string>(value);
    return text.empty() ? T{} : T(text);
  } else {
    return T(std::get<std::string>(value));  // std::string, std::filesystem::path
  }
}

/// A member as --check-config shows it: a Choice as its word, a secret as "***".
template <typename T>
std::string to_text(const Setting& row, const T& value) {
  if constexpr (std::is_enum_v<T> || std::is_same_v<T, bool>) {
    if (row.kind == SettingKind::Choice) return std::string(row.word(static_cast<long long>(value)));
    if constexpr (std::is_same_v<T, bool>) return value ? "true" : "false";
  } else if constexpr (std::is_integral_v<T>) {
    return std::to_string(value);
  } else if constexpr (std::is_same_v<T, std::chrono::milliseconds>) {
    return std::to_string(value.count());
  } else if constexpr (is_optional<T>::value) {
    return value.value_or("");
  } else {
    const std::string text(value);  // std::string, std::filesystem::path
    return row.secret && !text.empty() ? "***" : text;
  }
  return {};
}

/// The row's value goes to the member at the end of `Path`.
template <auto... Path>
constexpr SettingBinding to() {
  return {[](Config& config, const SettingValue& value) {
            auto& target = member<Path...>(config);
            target = from_value<std::remove_cvref_t<decltype(target)>>(value);
          },
          [](const Setting& row, const Config& config) {
            const auto* target = find_member<Path...>(config);
            return target != nullptr ? to_text(row, *target) : std::string();
          }};
}

/// As to(), for a row whose unset value leaves what another setting put there (REDIS_USERNAME overrides
/// the user of REDIS_URL).
template <auto... Path>
constexpr SettingBinding override_of() {
  return {[](Config& config, const SettingValue& value) {
            if (!std::get<std::string>(value).empty()) to<Path...>().store(config, value);
          },
          to<Path...>().show};
}

}  // namespace connector::binding
