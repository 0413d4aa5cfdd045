// The credentials against the token service stand-in: every flow, every bad answer, and the refresher.
#include <gtest/gtest.h>

#include <fstream>

#include "common/errors.hpp"
#include "identity/credential.hpp"
#include "stand_ins/hs256_jwt.hpp"
#include "identity/token_refresher.hpp"
#include "support/child_process.hpp"
#include "support/fake_token_service.hpp"

namespace connector {
namespace {

using namespace std::chrono_literals;
using testing::FakeTokenService;
using testing::FakeTokenServiceOptions;
using testing::TokenFault;

constexpr const char* kEventHubsScope = "https://eventhubs.azure.net/.default";

class EntraIdentityTest : public ::testing::Test {
 protected:
  EntraIdentityTest() : service_(service_options()) {}

  FakeTokenServiceOptions service_options() {
    FakeTokenServiceOptions options;
    options.assertion_file = dir_.path() / "azure-identity-token";
    write_assertion("assertion-one");
    return options;
  }

  void write_assertion(const std::string& text) {
    std::ofstream(dir_.path() / "azure-identity-token") << text << "\n";
  }

  EntraSettings client_secret_settings() const {
    EntraSettings s;
    s.tenant_id = service_.options().tenant_id;
    s.client_id = service_.options().client_id;
    s.client_secret = service_.options().client_secret;
    s.authority_host = service_.authority();
    s.ca_file = service_.certificates().ca_cert;
    return s;
  }

  EntraSettings workload_settings() const {
    EntraSettings s = client_secret_settings();
    s.client_secret.clear();
    s.federated_token_file = service_.options().assertion_file;
    return s;
  }

  /// The error text of a failing get_token(), checked to hold no secret.
  std::string failure(const EntraSettings& settings, std::chrono::milliseconds timeout = 10s) {
    try {
      make_credential(settings, timeout)->get_token(kEventHubsScope);
    } catch (const IdentityError& e) {
      const std::string text = e.what();
      EXPECT_EQ(text.find(service_.options().client_secret), std::string::npos) << text;
      EXPECT_EQ(text.find("assertion-one"), std::string::npos) << text;
      EXPECT_EQ(text.find(service_.options().identity_header), std::string::npos) << text;
      return text;
    }
    ADD_FAILURE() << "get_token() succeeded";
    return {};
  }

  testing::TempDir dir_;
  FakeTokenService service_;
};

TEST_F(EntraIdentityTest, client_secret_gets_a_signed_token_for_the_scope) {
  const auto before = std::chrono::system_clock::now();
  const AccessToken token = make_credential(client_secret_settings())->get_token(kEventHubsScope);
  EXPECT_TRUE(service_.request_errors().empty()) << service_.request_errors().front();
  EXPECT_EQ(verify_jwt_hs256(token.token, service_.options().signing_key, "https://eventhubs.azure.net",
                             std::chrono::system_clock::now()),
            "");
  EXPECT_GT(token.expires_on, before + 3500s);
  EXPECT_LT(token.expires_on, before + 3700s);
  ASSERT_EQ(service_.issued().size(), 1u);
  EXPECT_EQ(service_.issued()[0].flow, "client_secret");
}

TEST_F(EntraIdentityTest, workload_identity_reads_the_token_file_again_for_every_request) {
  const auto credential = make_credential(workload_settings());
  credential->get_token(kEventHubsScope);
  write_assertion("assertion-two");  // the kubelet rotated it
  credential->get_token("https://redis.azure.com/.default");
  EXPECT_TRUE(service_.request_errors().empty()) << service_.request_errors().front();
  ASSERT_EQ(service_.issued().size(), 2u);
  EXPECT_EQ(service_.issued()[1].flow, "workload_identity");
  EXPECT_EQ(service_.issued()[1].resource, "https://redis.azure.com");
}

TEST_F(EntraIdentityTest, app_service_managed_identity_sends_the_identity_header) {
  EntraSettings s;
  s.identity_endpoint = service_.identity_endpoint();
  s.identity_header = service_.options().identity_header;
  s.ca_file = service_.certificates().ca_cert;
  const AccessToken token = make_credential(s)->get_token(kEventHubsScope);
  EXPECT_TRUE(service_.request_errors().empty()) << service_.request_errors().front();
  EXPECT_EQ(service_.issued().at(0).flow, "app_service");
  // expires_on came as a string of epoch seconds.
  EXPECT_EQ(std::chrono::system_clock::to_time_t(token.expires_on), service_.issued().at(0).expires_on);
}

TEST(EntraImdsTest, imds_managed_identity_sends_metadata_and_the_user_assigned_client_id) {
  FakeTokenServiceOptions options;
  options.managed_client_id = "user-assigned-client";
  FakeTokenService service(options);
  EntraSettings s;
  s.client_id = "user-assigned-client";
  s.imds_host = service.imds_host();  // never the link-local address in tests
  s.ca_file = service.certificates().ca_cert;
  make_credential(s)->get_token(kEventHubsScope);
  EXPECT_TRUE(service.request_errors().empty()) << service.request_errors().front();
  EXPECT_EQ(service.issued().at(0).flow, "imds");
}

TEST_F(EntraIdentityTest, an_aadsts_error_is_quoted_with_its_code) {
  service_.set_fault(TokenFault::AadstsError);
  const std::string text = failure(client_secret_settings());
  EXPECT_NE(text.find("ClientSecretCredential"), std::string::npos) << text;
  EXPECT_NE(text.find("HTTP 400: unauthorized_client: AADSTS700016"), std::string::npos) << text;
  EXPECT_EQ(text.find("Trace ID"), std::string::npos) << text;
  EXPECT_NE(text.find(service_.authority().substr(0, service_.authority().size() - 1)), std::string::npos)
      << text;
}

TEST_F(EntraIdentityTest, a_wrong_secret_is_refused_and_not_echoed) {
  EntraSettings s = client_secret_settings();
  s.client_secret = "wrong-secret-value";
  const std::string text = failure(s);
  EXPECT_EQ(text.find("wrong-secret-value"), std::string::npos) << text;
  EXPECT_NE(text.find("HTTP 401"), std::string::npos) << text;
}

TEST_F(EntraIdentityTest, bad_answers_each_say_what_was_wrong) {
  service_.set_fault(TokenFault::ServerError, 1);
  EXPECT_NE(failure(workload_settings()).find("HTTP 500"), std::string::npos);
  service_.set_fault(TokenFault::MalformedJson, 1);
  EXPECT_NE(failure(workload_settings()).find("not a JSON object"), std::string::npos);
  service_.set_fault(TokenFault::NoExpiry, 1);
  EXPECT_NE(failure(workload_settings()).find("neither expires_in nor expires_on"), std::string::npos);
  service_.set_fault(TokenFault::Slow, 1);
  EXPECT_NE(failure(workload_settings(), 500ms).find("no answer"), std::string::npos);
}

TEST_F(EntraIdentityTest, an_unreachable_endpoint_is_named) {
  EntraSettings s = client_secret_settings();
  s.authority_host = "https://localhost:" + std::to_string(testing::free_port()) + "/";
  const std::string text = failure(s);
  EXPECT_NE(text.find("no answer from the token endpoint https://localhost:"), std::string::npos) << text;
}

TEST_F(EntraIdentityTest, an_unknown_ca_fails_verification) {
  EntraSettings s = client_secret_settings();
  s.ca_file = service_.certificates().other_ca_cert;
  EXPECT_NE(failure(s).find("certificate verify failed"), std::string::npos);
  s.ca_file.clear();  // the system store alone does not know the test CA either
  EXPECT_NE(failure(s).find("certificate verify failed"), std::string::npos);
}

TEST_F(EntraIdentityTest, the_refresher_replaces_tokens_before_they_expire_and_survives_failures) {
  service_.set_lifetime(2s);
  TokenRefresher refresher(make_credential(workload_settings()), kEventHubsScope, 600s, 100ms);
  refresher.start();
  const TokenSnapshot first = refresher.current();
  EXPECT_EQ(first.generation, 1u);
  ASSERT_TRUE(testing::wait_until([&] { return refresher.current().generation >= 3; }, 20s));
  // Failures in between keep the current token and retry until a new one comes.
  service_.set_fault(TokenFault::ServerError, 2);
  const auto generation = refresher.current().generation;
  ASSERT_TRUE(testing::wait_until([&] { return refresher.current().generation >= generation + 2; }, 20s));
  const TokenSnapshot now = refresher.current();
  EXPECT_GT(now.expires_on, std::chrono::system_clock::now());
  EXPECT_TRUE(service_.request_errors().empty());
}

}  // namespace
}  // namespace connector
