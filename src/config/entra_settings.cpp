#include <fmt/format.h>

#include "config/config.hpp"

namespace connector {

EntraCredentialKind EntraSettings::kind() const {
  // The configuration loader guarantees that the pieces of the chosen kind are all there.
  if (!client_secret.empty()) return EntraCredentialKind::ClientSecret;
  if (!federated_token_file.empty()) return EntraCredentialKind::WorkloadIdentity;
  if (!identity_endpoint.empty()) return EntraCredentialKind::ManagedIdentityAppService;
  return EntraCredentialKind::ManagedIdentityImds;
}

std::string EntraSettings::describe() const {
  const std::string user_assigned =
      client_id.empty() ? "system-assigned" : "user-assigned, client " + client_id;
  switch (kind()) {
    case EntraCredentialKind::ClientSecret:
      return fmt::format("ClientSecretCredential (tenant {}, client {}, authority {})", tenant_id, client_id,
                         authority_host);
    case EntraCredentialKind::WorkloadIdentity:
      return fmt::format("WorkloadIdentityCredential (tenant {}, client {}, token file {}, authority {})",
                         tenant_id, client_id, federated_token_file, authority_host);
    case EntraCredentialKind::ManagedIdentityAppService:
      return fmt::format("ManagedIdentityCredential (App Service, {}, endpoint {})", user_assigned,
                         identity_endpoint);
    case EntraCredentialKind::ManagedIdentityImds:
      return fmt::format("ManagedIdentityCredential (IMDS, {}, endpoint {})", user_assigned, imds_host);
  }
  return "unknown credential";
}

}  // namespace connector
