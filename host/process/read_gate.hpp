#pragma once
// Flow control between a child's output readers and the consumer of what they produce.
//
// A gate is shared by the process service (which stops reading a child's pipes while the gate is
// shut: the kernel pipe fills and the child blocks in write) and a consumer that shuts it when
// too much is in flight and opens it once it caught up. Nothing is dropped: output waits in the
// child's pipe. The agent-session wrapper in plugins/instances.cpp is the consumer for agent
// output; see there for the limits.

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace vik::process {

class ReadGate {
  public:
    // Consumer side; any thread.
    void shut();
    void open(); // runs the readers' resume callbacks, on this thread
    bool is_open() const;

    // Reader side: true when reading may go on; otherwise keeps `resume`, called once the gate
    // opens (callbacks must only post).
    bool admit(std::function<void()> resume);

  private:
    mutable std::mutex mutex_;
    bool open_ = true;
    std::vector<std::function<void()>> waiting_;
};

// The ABI has no link between an agent session's event sink and the processes its plugin starts;
// during the plugin's `start` call the link is the calling thread. While a scope lives, children
// spawned on this thread without a gate of their own get `gate`.
class ScopedSpawnGate {
  public:
    explicit ScopedSpawnGate(std::shared_ptr<ReadGate> gate);
    ~ScopedSpawnGate();
    ScopedSpawnGate(const ScopedSpawnGate &) = delete;
    ScopedSpawnGate &operator=(const ScopedSpawnGate &) = delete;

  private:
    std::shared_ptr<ReadGate> previous_;
};

std::shared_ptr<ReadGate> current_spawn_gate();

// One pipe read delivers many lines; a consumer woken per line would be woken hundreds of times
// for what one wake-up handles. While a ReadBatchScope lives on a thread (the process service
// holds one around each read it delivers), run_after_read() keeps `f` until the scope ends;
// without a scope it runs `f` at once.
void run_after_read(std::function<void()> f);

class ReadBatchScope {
  public:
    ReadBatchScope();
    ~ReadBatchScope(); // runs what was deferred, in order
    ReadBatchScope(const ReadBatchScope &) = delete;
    ReadBatchScope &operator=(const ReadBatchScope &) = delete;
};

} // namespace vik::process
