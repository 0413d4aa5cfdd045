#include "sinks/shared_sink.hpp"

namespace connector {

class SharedSink::Lease final : public Sink {
 public:
  explicit Lease(SharedSink& shared) : shared_(shared) {}
  ~Lease() override { stop(std::chrono::milliseconds(0)); }

  void start() override { shared_.start(); }
  void send(Batch batch, CompletionCallback done) override { shared_.sink_.send(std::move(batch), std::move(done)); }
  void stop(std::chrono::milliseconds grace) override {
    if (stopped_) return;
    stopped_ = true;
    shared_.stop(grace);
  }
  std::size_t max_event_bytes() const override { return shared_.sink_.max_event_bytes(); }
  bool ready() const override { return shared_.sink_.ready(); }
  Batch spare_batch() override { return shared_.sink_.spare_batch(); }

 private:
  SharedSink& shared_;
  bool stopped_ = false;  // the owning pipeline's stop() only, which runs once
};

std::unique_ptr<Sink> SharedSink::lease() { return std::make_unique<Lease>(*this); }

void SharedSink::start() {
  std::lock_guard lock(mutex_);
  if (started_) return;
  sink_.start();
  started_ = true;
}

void SharedSink::stop(std::chrono::milliseconds grace) {
  std::lock_guard lock(mutex_);
  if (users_ > 0) --users_;
  if (users_ == 0 && started_) {
    sink_.stop(grace);
    started_ = false;
  }
}

}  // namespace connector
