#include "proton_c_access.hpp"

#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/disposition.h>
#include <proton/link.h>
#include <proton/netaddr.h>
#include <proton/transport.h>

namespace connector {
namespace {

// Every Proton C++ handle derives from proton::internal::object<pn_X_t>, whose pn_object() accessor is
// protected and the public helper that exposes it (proton::unwrap, in proton_bits.hpp) is not installed.
// A class derived from the handle may form a pointer to that protected member, and a pointer to member
// of the base may be applied to any object of the base type: that is ordinary, well-defined C++ and it
// reads the wrapped C pointer without copying Proton internals. This is the only place that does it.
template <typename Handle>
struct CHandle : Handle {
  static auto get(const Handle& handle) {
    constexpr auto accessor = &CHandle::pn_object;
    return (handle.*accessor)();
  }
};

pn_link_t* c_link(const proton::link& link) { return CHandle<proton::link>::get(link); }
pn_delivery_t* c_delivery(const proton::delivery& delivery) {
  return CHandle<proton::delivery>::get(delivery);
}
pn_connection_t* c_connection(const proton::connection& connection) {
  return CHandle<proton::connection>::get(connection);
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
