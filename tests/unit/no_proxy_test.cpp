#include "config/no_proxy.hpp"

#include <gtest/gtest.h>

using namespace connector;

TEST(no_proxy_test, a_name_takes_itself_and_every_name_below_it_with_or_without_a_leading_dot) {
  for (const char* list : {"example.com", ".example.com", "*.example.com", " EXAMPLE.com. "}) {
    const NoProxy no_proxy = NoProxy::parse(list);
    EXPECT_TRUE(no_proxy.matches("example.com")) << list;
    EXPECT_TRUE(no_proxy.matches("ns.Example.COM")) << list;
    EXPECT_TRUE(no_proxy.matches("a.b.example.com.")) << list;
    EXPECT_FALSE(no_proxy.matches("badexample.com")) << list;
    EXPECT_FALSE(no_proxy.matches("example.com.evil.org")) << list;
    EXPECT_FALSE(no_proxy.matches("com")) << list;
  }
}

TEST(no_proxy_test, a_list_with_ports_addresses_and_a_star) {
  const NoProxy no_proxy =
      NoProxy::parse("localhost:8080, 10.0.0.0/8,,[::1]:443, 127.0.0.1,servicebus.windows.net");
  EXPECT_EQ(no_proxy.describe(), "localhost,10.0.0.0/8,::1,127.0.0.1,servicebus.windows.net");
  EXPECT_TRUE(no_proxy.matches("localhost"));
  EXPECT_TRUE(no_proxy.matches("::1"));
  EXPECT_TRUE(no_proxy.matches("127.0.0.1"));
  EXPECT_TRUE(no_proxy.matches("ns.servicebus.windows.net"));
  EXPECT_FALSE(no_proxy.matches("10.1.2.3"));  // ranges are not evaluated
  EXPECT_FALSE(no_proxy.matches("ns.servicebus.chinacloudapi.cn"));
  EXPECT_TRUE(NoProxy::parse("*").matches("anything.example"));
  EXPECT_TRUE(NoProxy::parse("a, *").matches("b"));
}

TEST(no_proxy_test, empty_takes_nothing) {
  EXPECT_FALSE(NoProxy().matches("example.com"));
  EXPECT_FALSE(NoProxy::parse(" , ,").matches("example.com"));
  EXPECT_EQ(NoProxy::parse(" , ,").describe(), "");
}
