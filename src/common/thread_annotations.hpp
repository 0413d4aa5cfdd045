#pragma once
// Clang's thread-safety annotations and a mutex they can check (the `thread-safety` preset builds with
// -Wthread-safety). libstdc++'s std::mutex carries no annotations, so the analysis needs a capability
// type of its own. Under GCC the macros expand to nothing and the wrappers cost nothing.
#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define CONNECTOR_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define CONNECTOR_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) CONNECTOR_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY CONNECTOR_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) CONNECTOR_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) CONNECTOR_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) CONNECTOR_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) CONNECTOR_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) CONNECTOR_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) CONNECTOR_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) CONNECTOR_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS CONNECTOR_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace connector {

/// A std::mutex the thread-safety analysis knows as a capability. Waits take a plain
/// std::condition_variable over the wrapped std::mutex (no condition_variable_any) and are REQUIRES(this):
/// write a wait as a loop over a predicate that is itself REQUIRES(mutex), so its reads are checked too.
class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { mutex_.lock(); }
  void unlock() RELEASE() { mutex_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mutex_.try_lock(); }

  /// Releases the mutex while waiting and holds it again on return (as seen by the analysis: held throughout).
  void wait(std::condition_variable& condition) REQUIRES(this) {
    std::unique_lock<std::mutex> lock(mutex_, std::adopt_lock);
    condition.wait(lock);
    lock.release();
  }
  /// False once `deadline` has passed; the caller checks its predicate again either way.
  bool wait_until(std::condition_variable& condition, std::chrono::steady_clock::time_point deadline)
      REQUIRES(this) {
    std::unique_lock<std::mutex> lock(mutex_, std::adopt_lock);
    const bool notified = condition.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return notified;
  }

 private:
  std::mutex mutex_;
};

/// Holds a Mutex for its scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) ACQUIRE(mutex) : mutex_(mutex) { mutex_.lock(); }
  ~MutexLock() RELEASE() { mutex_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mutex_;
};

/// Lets go of a Mutex that the caller holds for its scope, and takes it again on the way out, also when
/// an exception leaves the scope (so the enclosing MutexLock always releases a held mutex).
class SCOPED_CAPABILITY MutexUnlock {
 public:
  explicit MutexUnlock(Mutex& mutex) RELEASE(mutex) : mutex_(mutex) { mutex_.unlock(); }
  ~MutexUnlock() RELEASE() { mutex_.lock(); }
  MutexUnlock(const MutexUnlock&) = delete;
  MutexUnlock& operator=(const MutexUnlock&) = delete;

 private:
  Mutex& mutex_;
};

}  // namespace connector
