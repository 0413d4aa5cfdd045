#include "redis/client_list.hpp"

#include <gtest/gtest.h>

namespace connector {
namespace {

TEST(client_list_test, parses_the_fields_an_operator_needs) {
  const auto clients = parse_client_list(
      "id=4 addr=127.0.0.1:42362 laddr=127.0.0.1:7391 fd=8 name=dup:reader age=12 idle=1 flags=b\n"
      "id=6 addr=[::1]:42386 fd=11 name= age=0 idle=0 cmd=client|list\r\n\n");
  ASSERT_EQ(clients.size(), 2u);
  EXPECT_EQ(clients[0].id, "4");
  EXPECT_EQ(clients[0].address, "127.0.0.1:42362");
  EXPECT_EQ(clients[0].name, "dup:reader");
  EXPECT_EQ(clients[0].age_seconds, 12);
  EXPECT_EQ(clients[1].address, "[::1]:42386");
  EXPECT_EQ(clients[1].name, "");
}

TEST(client_list_test, ignores_fields_without_a_value_separator) {
  const auto clients = parse_client_list("id=1 garbage name=x age=notanumber");
  ASSERT_EQ(clients.size(), 1u);
  EXPECT_EQ(clients[0].name, "x");
  EXPECT_EQ(clients[0].age_seconds, 0);
}

}  // namespace
}  // namespace connector
