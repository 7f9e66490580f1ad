#include "process/read_gate.hpp"

namespace vik::process {
namespace {
thread_local std::shared_ptr<ReadGate> spawn_gate;
thread_local int read_batch_depth = 0;
thread_local std::vector<std::function<void()>> after_read;
} // namespace

void run_after_read(std::function<void()> f) {
    if (read_batch_depth == 0) return f();
    after_read.push_back(std::move(f));
}

ReadBatchScope::ReadBatchScope() { ++read_batch_depth; }

ReadBatchScope::~ReadBatchScope() {
    if (--read_batch_depth > 0) return;
    std::vector<std::function<void()>> due;
    due.swap(after_read);
    for (auto &f : due)
        f();
}

void ReadGate::shut() {
    std::lock_guard lock(mutex_);
    open_ = false;
}

void ReadGate::open() {
    std::vector<std::function<void()>> resume;
    {
        std::lock_guard lock(mutex_);
        if (open_) return;
        open_ = true;
        resume.swap(waiting_);
    }
    for (auto &r : resume)
        r();
}

bool ReadGate::is_open() const {
    std::lock_guard lock(mutex_);
    return open_;
}

bool ReadGate::admit(std::function<void()> resume) {
    std::lock_guard lock(mutex_);
    if (open_) return true;
    waiting_.push_back(std::move(resume));
    return false;
}

ScopedSpawnGate::ScopedSpawnGate(std::shared_ptr<ReadGate> gate) : previous_(std::move(spawn_gate)) {
    spawn_gate = std::move(gate);
}
ScopedSpawnGate::~ScopedSpawnGate() { spawn_gate = std::move(previous_); }

std::shared_ptr<ReadGate> current_spawn_gate() { return spawn_gate; }

} // namespace vik::process
