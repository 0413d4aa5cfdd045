#include "eventhubs/proton_internals.hpp"

#include <proton/condition.h>
#include <proton/delivery.h>
#include <proton/disposition.h>
#include <proton/link.h>

#include <cstring>

namespace connector {

namespace {

// Proton C++ 0.37 wraps pn_link_t / pn_delivery_t in internal::object<T>, whose pn_object() is
// protected, and has no public accessor for the peer's max-message-size or a rejection's condition.
// A class derived from the public wrapper may read the protected member of its own copy; the copy
// shares (reference-counts) the same C object. This is the only place that reaches below the C++ API.
template <class Wrapper, class Raw>
class RawAccess : public Wrapper {
 public:
  explicit RawAccess(const Wrapper& wrapper) : Wrapper(wrapper) {}
  Raw* raw() const { return this->pn_object(); }
};

}  // namespace

std::optional<std::uint64_t> remote_max_message_size(const proton::link& link) {
  pn_link_t* raw = RawAccess<proton::link, pn_link_t>(link).raw();
  if (raw == nullptr) return std::nullopt;
  const std::uint64_t size = pn_link_remote_max_message_size(raw);
  if (size == 0) return std::nullopt;  // AMQP: 0 or absent means "no limit announced"
  return size;
}

RemoteCondition remote_rejection(const proton::transfer& transfer) {
  RemoteCondition out;
  pn_delivery_t* raw = RawAccess<proton::transfer, pn_delivery_t>(transfer).raw();
  if (raw == nullptr) return out;
  pn_disposition_t* remote = pn_delivery_remote(raw);
  if (remote == nullptr) return out;
  pn_condition_t* condition = pn_disposition_condition(remote);
  if (condition == nullptr || !pn_condition_is_set(condition)) return out;
  if (const char* name = pn_condition_get_name(condition)) out.name = name;
  if (const char* description = pn_condition_get_description(condition)) out.description = description;
  return out;
}

std::optional<std::uint64_t> tag_number_on(const proton::transfer& transfer, const proton::link& link) {
  pn_delivery_t* raw = RawAccess<proton::transfer, pn_delivery_t>(transfer).raw();
  pn_link_t* raw_link = RawAccess<proton::link, pn_link_t>(link).raw();
  if (raw == nullptr || raw_link == nullptr || pn_delivery_link(raw) != raw_link) return std::nullopt;
  const pn_delivery_tag_t tag = pn_delivery_tag(raw);
  std::uint64_t number = 0;
  if (tag.size != sizeof number) return std::nullopt;
  std::memcpy(&number, tag.start, sizeof number);
  return number;
}

}  // namespace connector
