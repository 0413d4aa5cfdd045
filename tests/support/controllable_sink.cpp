#include "support/controllable_sink.hpp"

namespace connector::testing {

void ControllableSink::send(Batch batch, CompletionCallback done) {
  std::vector<Completion> now;
  Batch held_events;
  std::vector<std::size_t> held_indices;
  {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      sent_.push_back(batch[i].entry_id);
      std::optional<Outcome> outcome = policy_ ? policy_(batch[i]) : std::nullopt;
      if (outcome) {
        now.push_back(Completion{i, *outcome, "policy", std::chrono::milliseconds(0)});
      } else {
        held_indices.push_back(i);
      }
    }
    if (!held_indices.empty()) {
      // Keep the original indices: the batch is held whole and completed through them.
      held_.push_back(Pending{std::move(batch), done});
      for (std::size_t i = 0, j = 0; i < held_.back().batch.size(); ++i) {
        if (j < held_indices.size() && held_indices[j] == i) {
          ++j;
        } else {
          held_.back().batch[i].entry_id.clear();  // completed already
        }
      }
    }
  }
  changed_.notify_all();
  if (!now.empty()) done(std::move(now));
}

void ControllableSink::set_policy(Policy policy) {
  std::lock_guard lock(mutex_);
  policy_ = std::move(policy);
}

std::size_t ControllableSink::complete_held(Outcome outcome, std::string reason) {
  std::vector<Pending> held;
  {
    std::lock_guard lock(mutex_);
    held.swap(held_);
  }
  std::size_t count = 0;
  for (auto& pending : held) {
    std::vector<Completion> completions;
    for (std::size_t i = 0; i < pending.batch.size(); ++i) {
      if (pending.batch[i].entry_id.empty()) continue;
      completions.push_back(Completion{i, outcome, reason, std::chrono::milliseconds(0)});
    }
    count += completions.size();
    if (!completions.empty()) pending.done(std::move(completions));
  }
  return count;
}

std::size_t ControllableSink::held_events() {
  std::lock_guard lock(mutex_);
  std::size_t count = 0;
  for (const auto& pending : held_) {
    for (const auto& event : pending.batch) count += event.entry_id.empty() ? 0 : 1;
  }
  return count;
}

std::vector<std::string> ControllableSink::sent_ids() {
  std::lock_guard lock(mutex_);
  return sent_;
}

bool ControllableSink::wait_for_sent(std::size_t count, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return sent_.size() >= count; });
}

}  // namespace connector::testing
