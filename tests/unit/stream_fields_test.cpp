#include "core/stream_fields.hpp"

#include <gtest/gtest.h>

#include <iterator>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace connector {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs pairs(const StreamFields& fields) {
  Pairs out;
  for (const auto& field : fields) out.emplace_back(field.name, field.value);
  return out;
}

static_assert(std::forward_iterator<StreamFields::const_iterator>);

TEST(stream_fields_test, keeps_pairs_in_order_with_empty_and_binary_bytes) {
  StreamFields fields;
  fields.add("a", "1");
  fields.add("", "");
  fields.add(std::string_view("\0x", 2), std::string(300, 'v'));
  ASSERT_EQ(fields.size(), 3u);
  EXPECT_EQ(pairs(fields), (Pairs{{"a", "1"}, {"", ""}, {std::string("\0x", 2), std::string(300, 'v')}}));
  EXPECT_EQ(fields.text_size(), 2u + 2u + 300u);
  EXPECT_EQ(fields.at(2).name, std::string_view("\0x", 2));
  EXPECT_THROW(fields.at(3), std::out_of_range);
}

TEST(stream_fields_test, a_name_without_its_value_is_not_a_field) {
  StreamFields fields;
  fields.add_name("n");
  EXPECT_EQ(fields.size(), 0u);
  EXPECT_EQ(fields.begin(), fields.end());
  fields.add_value("v");
  EXPECT_EQ(pairs(fields), (Pairs{{"n", "v"}}));
}

TEST(stream_fields_test, copies_and_moves_own_their_bytes) {
  // More fields than are kept inline, and short texts that a moved string keeps in its own object.
  StreamFields original;
  for (int i = 0; i < 12; ++i) original.add("k" + std::to_string(i), "v");
  const Pairs expected = pairs(original);

  StreamFields copy = original;
  original.clear();
  original.add("other", "bytes");
  EXPECT_EQ(pairs(copy), expected);

  StreamFields moved = std::move(copy);
  EXPECT_EQ(pairs(moved), expected);

  StreamFields small{{"a", "b"}};
  std::vector<StreamFields> many;
  for (int i = 0; i < 100; ++i) many.push_back(small);  // reallocations move the elements
  for (const auto& fields : many) EXPECT_EQ(pairs(fields), (Pairs{{"a", "b"}}));
  EXPECT_TRUE(many.front() == small);
}

}  // namespace
}  // namespace connector
