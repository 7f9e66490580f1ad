#pragma once
// The workflow config new work uses, and every config it used before (hot reload;
// docs/configuration.md, "Reloading the workflow"). The scheduler's parts read the current one
// through here at each use. A reload adopts a new generation; the old ones stay alive until the
// host exits (a few KiB each, and reloads are operator edits), so whatever an earlier
// generation handed out (a running session's stage, a hook's script on a worker) stays valid:
// running work keeps the config it started with, and nothing is freed under it.
//
// Threading: adopt() on the loop's thread; get() from any thread (a worker sees either
// generation, each complete).

#include "workflow/config.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace vik::orchestrator {

class LiveConfig {
  public:
    // `first` must outlive this object (the composition root's config).
    explicit LiveConfig(const workflow::Config &first) : current_(&first) {}
    LiveConfig(const LiveConfig &) = delete;
    LiveConfig &operator=(const LiveConfig &) = delete;

    const workflow::Config &get() const { return *current_.load(std::memory_order_acquire); }
    const workflow::Config *operator->() const { return &get(); }

    // Makes `next` the config of new work; returns it.
    const workflow::Config &adopt(std::unique_ptr<const workflow::Config> next) {
        const workflow::Config *raw = next.get();
        kept_.push_back(std::move(next));
        current_.store(raw, std::memory_order_release);
        ++generation_;
        return *raw;
    }

    // 0 for the config the host started with, then 1, 2, ... per reload.
    uint64_t generation() const { return generation_; }

  private:
    std::atomic<const workflow::Config *> current_;
    std::vector<std::unique_ptr<const workflow::Config>> kept_;
    uint64_t generation_ = 0;
};

} // namespace vik::orchestrator
