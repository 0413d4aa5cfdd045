#pragma once
// EventHubsSinkOptions for tests of the sink against fake-eventhubs.
#include <set>
#include <string>

#include "eventhubs/eventhubs_sink.hpp"
#include "support/fake_eventhubs_server.hpp"

namespace connector::testing {

/// The sink's options for `server` as its connection string would give them (host localhost, the test
/// certificate's name; TLS with the test CA when the server has it), with 400 events in flight and
/// retries and timeouts far shorter than in production.
EventHubsSinkOptions sink_options_for(const FakeEventHubsServer& server);

/// Starts a sink with `options` and returns why start() failed (its EventHubsError), or "" when it started.
std::string sink_start_error(EventHubsSinkOptions options);

/// The names of this process's threads (pthread_setname_np shows in /proc).
std::set<std::string> thread_names();

}  // namespace connector::testing
