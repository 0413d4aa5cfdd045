#pragma once
// How patiently a connection is tried at startup, Redis's and Event Hubs' alike: a few attempts with
// short pauses, because the process serves nothing yet and its supervisor restarts it (exit status 3)
// when they run out.
#include <chrono>

namespace connector {

/// Connection attempts at startup before the start fails.
inline constexpr int kStartupConnectAttempts = 3;
/// The most a startup attempt waits for the next, whatever the back-off (RETRY_DELAY_MS may be much
/// longer), so that an unreachable peer fails the start within seconds.
inline constexpr std::chrono::milliseconds kStartupAttemptPause{2000};

}  // namespace connector
