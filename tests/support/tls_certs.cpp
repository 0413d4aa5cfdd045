#include "support/tls_certs.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

namespace connector::testing {
namespace {
void run(const std::string& command) {
  if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) {
    throw std::runtime_error("certificate generation failed: " + command);
  }
}

std::string q(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

void make_ca(const std::filesystem::path& cert, const std::filesystem::path& key, const std::string& name) {
  run("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj '/CN=" + name + "' -keyout " + q(key) +
      " -out " + q(cert));
}

void make_leaf(const std::filesystem::path& dir, const std::string& name, const TlsCertificates& pki,
               const std::filesystem::path& cert, const std::filesystem::path& key, const std::string& ext) {
  const auto csr = dir / (name + ".csr");
  const auto ext_file = dir / (name + ".ext");
  std::ofstream(ext_file) << ext;
  run("openssl req -newkey rsa:2048 -nodes -subj '/CN=" + name + "' -keyout " + q(key) + " -out " + q(csr));
  run("openssl x509 -req -in " + q(csr) + " -CA " + q(pki.ca_cert) + " -CAkey " + q(pki.ca_key) +
      " -CAcreateserial -days 1 -out " + q(cert) + " -extfile " + q(ext_file));
}
}  // namespace

TlsCertificates make_test_certificates(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  TlsCertificates pki;
  pki.ca_cert = dir / "ca.crt";
  pki.ca_key = dir / "ca.key";
  pki.server_cert = dir / "server.crt";
  pki.server_key = dir / "server.key";
  pki.client_cert = dir / "client.crt";
  pki.client_key = dir / "client.key";
  pki.other_ca_cert = dir / "other-ca.crt";
  make_ca(pki.ca_cert, pki.ca_key, "connector-test-ca");
  make_ca(pki.other_ca_cert, dir / "other-ca.key", "unrelated-ca");
  make_leaf(dir, "localhost", pki, pki.server_cert, pki.server_key,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  make_leaf(dir, "client", pki, pki.client_cert, pki.client_key, "extendedKeyUsage=clientAuth\n");
  return pki;
}

}  // namespace connector::testing
