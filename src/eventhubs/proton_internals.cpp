#include "eventhubs/proton_internals.hpp"

#include <proton/condition.h>
#include <proton/delivery.h>
#include <proton/disposition.h>
#include <proton/link.h>

#include <cstring>

namespace connector {

namespace {

pn_link_t* raw_link(const proton::link& link) { return raw_object(link); }
pn_delivery_t* raw_delivery(const proton::transfer& transfer) { return raw_object(transfer); }

}  // namespace

std::optional<std::uint64_t> remote_max_message_size(const proton::link& link) {
  pn_link_t* raw = raw_link(link);
  if (raw == nullptr) return std::nullopt;
  const std::uint64_t size = pn_link_remote_max_message_size(raw);
  if (size == 0) return std::nullopt;  // AMQP: 0 or absent means "no limit announced"
  return size;
}

RemoteCondition remote_rejection(const proton::transfer& transfer) {
  RemoteCondition out;
  pn_delivery_t* raw = raw_delivery(transfer);
  if (raw == nullptr) return out;
  pn_disposition_t* remote = pn_delivery_remote(raw);
  if (remote == nullptr) return out;
  pn_condition_t* condition = pn_disposition_condition(remote);
  if (condition == nullptr || !pn_condition_is_set(condition)) return out;
  if (const char* name = pn_condition_get_name(condition)) out.name = name;
  if (const char* description = pn_condition_get_description(condition)) out.description = description;
  return out;
}

LinkIdentity link_identity(const proton::link& link) { return raw_link(link); }

TagOnLink tag_number(const proton::transfer& transfer) {
  TagOnLink out;
  pn_delivery_t* raw = raw_delivery(transfer);
  if (raw == nullptr) return out;
  out.link = pn_delivery_link(raw);
  const pn_delivery_tag_t tag = pn_delivery_tag(raw);
  std::uint64_t number = 0;
  if (tag.size != sizeof number) return out;
  std::memcpy(&number, tag.start, sizeof number);
  out.number = number;
  return out;
}

void send_encoded(const proton::sender& sender, std::uint64_t tag, std::string_view head,
                  std::string_view tail) {
  begin_delivery(sender, tag);
  append_to_delivery(sender, head);
  append_to_delivery(sender, tail);
  end_delivery(sender);
}

void begin_delivery(const proton::sender& sender, std::uint64_t tag) {
  pn_delivery(raw_link(sender), pn_dtag(reinterpret_cast<const char*>(&tag), sizeof tag));
}

void append_to_delivery(const proton::sender& sender, std::string_view bytes) {
  // Appends to the current delivery's bytes (Proton copies them).
  if (!bytes.empty()) pn_link_send(raw_link(sender), bytes.data(), bytes.size());
}

void end_delivery(const proton::sender& sender) { pn_link_advance(raw_link(sender)); }

}  // namespace connector
