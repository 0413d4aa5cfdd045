#pragma once
// The fields of one stream entry, kept in one buffer.
#include <boost/container/small_vector.hpp>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>

namespace connector {

/// One field of a stream entry; name and value are raw bytes (Redis strings are binary-safe). A view into
/// the StreamFields it came from.
struct StreamField {
  std::string_view name;
  std::string_view value;
};

/// The name/value pairs of a stream entry, in Redis order. Every entry of every batch has them, so they
/// live in one text buffer with their end offsets beside it (inline for up to eight fields): one
/// allocation per entry where a string per long name or value and a vector of string pairs took several.
/// Offsets, not pointers, so copies and moves stay valid.
class StreamFields {
 public:
  class const_iterator {
   public:
    // Yields StreamField values (views), not references: an input iterator by C++17's words, a forward one
    // by C++20's concepts.
    using iterator_concept = std::forward_iterator_tag;
    using iterator_category = std::input_iterator_tag;
    using value_type = StreamField;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = StreamField;

    const_iterator() = default;
    StreamField operator*() const { return (*fields_)[index_]; }
    const_iterator& operator++() {
      ++index_;
      return *this;
    }
    const_iterator operator++(int) {
      auto before = *this;
      ++index_;
      return before;
    }
    bool operator==(const const_iterator& other) const { return index_ == other.index_; }

   private:
    friend class StreamFields;
    const_iterator(const StreamFields* fields, std::size_t index) : fields_(fields), index_(index) {}
    const StreamFields* fields_ = nullptr;
    std::size_t index_ = 0;
  };

  StreamFields() = default;
  StreamFields(std::initializer_list<std::pair<std::string_view, std::string_view>> fields);

  /// Room for `fields` pairs and `bytes` of names and values.
  void reserve(std::size_t fields, std::size_t bytes);
  void add(std::string_view name, std::string_view value);
  /// A name and its value arrive one at a time from the reply reader; a name without a value yet is not
  /// counted by size() nor seen by iteration.
  void add_name(std::string_view name) { append(name); }
  void add_value(std::string_view value) { append(value); }

  std::size_t size() const noexcept { return ends_.size() / 2; }
  bool empty() const noexcept { return size() == 0; }
  /// Pairs reservable without growing (bounded reservations are tested).
  std::size_t capacity() const noexcept { return ends_.capacity() / 2; }
  /// Bytes of names and values.
  std::size_t text_size() const noexcept { return text_.size(); }

  StreamField operator[](std::size_t index) const noexcept {
    return {piece(2 * index), piece(2 * index + 1)};
  }
  StreamField at(std::size_t index) const;
  const_iterator begin() const noexcept { return {this, 0}; }
  const_iterator end() const noexcept { return {this, size()}; }

  void clear() noexcept;

  friend bool operator==(const StreamFields& a, const StreamFields& b) {
    return a.text_ == b.text_ && a.ends_ == b.ends_;
  }

 private:
  void append(std::string_view bytes);
  std::string_view piece(std::size_t index) const noexcept {
    const std::size_t begin = index == 0 ? 0 : ends_[index - 1];
    return std::string_view(text_).substr(begin, ends_[index] - begin);
  }

  std::string text_;
  boost::container::small_vector<std::size_t, 16> ends_;  // end of each name and of each value, in turn
};

}  // namespace connector
