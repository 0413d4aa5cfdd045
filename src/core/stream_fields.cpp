#include "core/stream_fields.hpp"

#include <stdexcept>

namespace connector {

StreamFields::StreamFields(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  std::size_t bytes = 0;
  for (const auto& [name, value] : fields) bytes += name.size() + value.size();
  reserve(fields.size(), bytes);
  for (const auto& [name, value] : fields) add(name, value);
}

void StreamFields::reserve(std::size_t fields, std::size_t bytes) {
  ends_.reserve(2 * fields);
  text_.reserve(bytes);
}

void StreamFields::add(std::string_view name, std::string_view value) {
  append(name);
  append(value);
}

void StreamFields::append(std::string_view bytes) {
  text_.append(bytes);
  ends_.push_back(text_.size());
}

StreamField StreamFields::at(std::size_t index) const {
  if (index >= size()) throw std::out_of_range("StreamFields::at: no field " + std::to_string(index));
  return (*this)[index];
}

void StreamFields::clear() noexcept {
  text_.clear();
  ends_.clear();
}

}  // namespace connector
