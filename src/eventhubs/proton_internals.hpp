#pragma once
// What the Event Hubs sink needs that Proton C++ 0.37 only exposes through its C API (or only with a copy).
#include <cstdint>
#include <optional>
#include <proton/link.hpp>
#include <proton/sender.hpp>
#include <proton/transfer.hpp>
#include <string>
#include <string_view>

namespace connector {

namespace detail {
template <class Handle>
struct RawAccess : Handle {
  static auto raw(const Handle& handle) {
    constexpr auto accessor = &RawAccess::pn_object;
    return (handle.*accessor)();
  }
};
}  // namespace detail

/// The C object (pn_link_t*, pn_delivery_t*, pn_connection_t*...) under a Proton C++ handle.
/// Proton C++ 0.37 wraps it in internal::object<T>, whose pn_object() is protected, and has no public
/// accessor for several things we need (max-message-size, a rejection's condition, sending encoded
/// bytes). A class derived from the handle may form a pointer to that protected member, and a pointer
/// to a member of the base applies to any object of the base type: ordinary, well-defined C++ that
/// reads the pointer without copying the handle (a copy reference-counts, which shows at one call per
/// event). Everything that reaches below the C++ API goes through this (the sink and fake-eventhubs).
template <class Handle>
auto raw_object(const Handle& handle) {
  return detail::RawAccess<Handle>::raw(handle);
}

/// The max-message-size the peer announced when it attached `link`; nullopt when it announced none (0).
std::optional<std::uint64_t> remote_max_message_size(const proton::link& link);

/// The error condition of a delivery's remote (rejected) outcome: name and description, empty when none.
struct RemoteCondition {
  std::string name;
  std::string description;
};
RemoteCondition remote_rejection(const proton::transfer& transfer);

/// Names a link without holding it (a plain pointer to compare); null for an empty handle.
using LinkIdentity = const void*;
LinkIdentity link_identity(const proton::link& link);

/// The delivery tag of `transfer` read as a native 64-bit number when it is 8 bytes long (the sink's
/// DeliveryId), and the link it travels on. Read in place: proton::tracker::tag() and sender() copy and
/// reference-count, which shows at one answer per event.
struct TagOnLink {
  std::optional<std::uint64_t> number;
  LinkIdentity link = nullptr;
};
TagOnLink tag_number(const proton::transfer& transfer);

/// Sends `head` + `tail` (one AMQP message, in two parts) as an unsettled delivery tagged with `tag`, as
/// proton::sender::send does after encoding a proton::message; the caller checks credit first.
void send_encoded(const proton::sender& sender, std::uint64_t tag, std::string_view head, std::string_view tail);

/// The same, piece by piece, for a message whose length is found while it is written (a batch): starts
/// the delivery; append_to_delivery() adds bytes; end_delivery() sends it.
void begin_delivery(const proton::sender& sender, std::uint64_t tag);
void append_to_delivery(const proton::sender& sender, std::string_view bytes);
void end_delivery(const proton::sender& sender);

}  // namespace connector
