#pragma once
// EventHubsSinkOptions for tests of the sink against fake-eventhubs.
#include "eventhubs/eventhubs_sink.hpp"
#include "support/fake_eventhubs_server.hpp"

namespace connector::testing {

/// The sink's options for `server` as its connection string would give them (host localhost, the test
/// certificate's name; TLS with the test CA when the server has it), with 400 events in flight and
/// retries and timeouts far shorter than in production.
EventHubsSinkOptions sink_options_for(const FakeEventHubsServer& server);

}  // namespace connector::testing
