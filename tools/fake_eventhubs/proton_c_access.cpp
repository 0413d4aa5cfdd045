#include "proton_c_access.hpp"

#include <dlfcn.h>
#include <proton/codec.h>
#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/disposition.h>
#include <proton/link.h>
#include <proton/netaddr.h>
#include <proton/transport.h>

#include <proton/message.hpp>

#include "eventhubs/proton_internals.hpp"

namespace {
// Written by pn_link_recv below, read by last_received_message_bytes(); both run on the container thread.
thread_local std::string t_last_received;
}  // namespace

// Proton C++ reads every incoming message with pn_link_recv and decodes it before calling on_message,
// without keeping the bytes. This definition, in the executable, takes precedence over the library's
// for libqpid-proton-cpp's calls (ordinary ELF symbol interposition: the executable is searched first)
// and forwards to the library's own after copying what was read. Only fake-eventhubs does this.
extern "C" ssize_t pn_link_recv(pn_link_t* link, char* bytes, size_t size) {
  using Recv = ssize_t (*)(pn_link_t*, char*, size_t);
  static const auto real = reinterpret_cast<Recv>(dlsym(RTLD_NEXT, "pn_link_recv"));
  const ssize_t received = real(link, bytes, size);
  if (received > 0) t_last_received.assign(bytes, static_cast<std::size_t>(received));
  return received;
}

namespace connector {
namespace {

pn_link_t* c_link(const proton::link& link) { return raw_object(link); }
pn_delivery_t* c_delivery(const proton::delivery& delivery) {
  return raw_object(delivery);
}
pn_connection_t* c_connection(const proton::connection& connection) {
  return raw_object(connection);
}

}  // namespace

void set_link_max_message_size(const proton::link& link, std::uint64_t bytes) {
  if (pn_link_t* raw = c_link(link)) pn_link_set_max_message_size(raw, bytes);
}

void reject_with_condition(const proton::delivery& delivery, const std::string& condition,
                           const std::string& description) {
  pn_delivery_t* raw = c_delivery(delivery);
  if (raw == nullptr) return;
  pn_condition_t* local = pn_disposition_condition(pn_delivery_local(raw));
  pn_condition_set_name(local, condition.c_str());
  pn_condition_set_description(local, description.c_str());
  pn_delivery_update(raw, PN_REJECTED);
  pn_delivery_settle(raw);
}

void drop_transport(const proton::connection& connection) {
  pn_connection_t* raw = c_connection(connection);
  if (raw == nullptr) return;
  pn_transport_t* transport = pn_connection_transport(raw);
  if (transport == nullptr) return;
  // Closing both ends makes the proactor close the socket as soon as this event batch is done; no
  // close frame is written because the head (output) side is closed too.
  pn_transport_close_tail(transport);
  pn_transport_close_head(transport);
}

std::string_view last_received_message_bytes() { return t_last_received; }

bool is_encoded_message(std::string_view encoded) {
  constexpr std::uint64_t kFirstSection = 0x70, kLastSection = 0x78;  // header .. footer
  pn_data_t* data = pn_data(0);
  std::size_t offset = 0;
  bool sections_only = !encoded.empty();
  while (sections_only && offset < encoded.size()) {
    pn_data_clear(data);
    const ssize_t used = pn_data_decode(data, encoded.data() + offset, encoded.size() - offset);
    pn_data_rewind(data);
    sections_only = used > 0 && pn_data_next(data) && pn_data_type(data) == PN_DESCRIBED;
    if (!sections_only) break;
    offset += static_cast<std::size_t>(used);
    pn_data_enter(data);
    pn_data_next(data);
    const std::uint64_t descriptor = pn_data_type(data) == PN_ULONG ? pn_data_get_ulong(data) : 0;
    sections_only = descriptor >= kFirstSection && descriptor <= kLastSection;
  }
  pn_data_free(data);
  return sections_only;
}

std::vector<std::string> batch_envelope_sections(std::string_view encoded) {
  constexpr std::uint64_t kProperties = 0x73, kApplicationProperties = 0x74, kData = 0x75;
  std::vector<std::string> sections;
  pn_data_t* data = pn_data(0);
  bool plain_message_sections = false;
  std::size_t offset = 0;
  while (offset < encoded.size()) {
    const ssize_t used = pn_data_decode(data, encoded.data() + offset, encoded.size() - offset);
    if (used <= 0) break;
    offset += static_cast<std::size_t>(used);
  }
  pn_data_rewind(data);
  while (offset == encoded.size() && pn_data_next(data)) {
    if (pn_data_type(data) != PN_DESCRIBED) continue;
    pn_data_enter(data);
    pn_data_next(data);
    const std::uint64_t descriptor = pn_data_type(data) == PN_ULONG ? pn_data_get_ulong(data) : 0;
    pn_data_next(data);
    // Proton writes an empty properties section (an empty list) into every message it encodes, an
    // envelope too: only fields that are there make it an event of its own.
    const bool empty_list = pn_data_type(data) == PN_LIST && pn_data_get_list(data) == 0;
    if ((descriptor == kProperties && !empty_list) || descriptor == kApplicationProperties) {
      plain_message_sections = true;
    }
    if (descriptor == kData && pn_data_type(data) == PN_BINARY) {
      const pn_bytes_t bytes = pn_data_get_binary(data);
      sections.emplace_back(bytes.start, bytes.size);
    }
    pn_data_exit(data);
  }
  pn_data_free(data);
  if (offset != encoded.size() || sections.empty()) return {};
  if (sections.size() == 1 && (plain_message_sections || !is_encoded_message(sections[0]))) return {};
  return sections;
}

std::string remote_address(const proton::connection& connection) {
  pn_connection_t* raw = c_connection(connection);
  pn_transport_t* transport = raw != nullptr ? pn_connection_transport(raw) : nullptr;
  const pn_netaddr_t* address = transport != nullptr ? pn_transport_remote_addr(transport) : nullptr;
  if (address == nullptr) return {};
  char host[256] = {};
  char port[32] = {};
  if (pn_netaddr_host_port(address, host, sizeof host, port, sizeof port) != 0) return {};
  return std::string(host) + ":" + port;
}

}  // namespace connector
