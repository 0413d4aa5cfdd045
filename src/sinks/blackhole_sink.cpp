#include "sinks/blackhole_sink.hpp"

#include <limits>

namespace connector {

void BlackholeSink::send(Batch batch, CompletionCallback done) {
  std::vector<Completion> completions(batch.size());
  for (std::size_t i = 0; i < completions.size(); ++i) completions[i].index = i;
  done(std::move(completions));
  spent_.give(std::move(batch));
}

std::size_t BlackholeSink::max_event_bytes() const { return std::numeric_limits<std::size_t>::max(); }

}  // namespace connector
