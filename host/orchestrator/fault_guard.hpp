#pragma once
// Loop handlers never throw out of the loop. A handler that throws broke an invariant: its
// exception is handed, with the issue and stage the handler was about, to the owner's fault
// handler (the scheduler blocks the issue and goes on); every other running agent survives.
// Every part runs its loop callbacks through the same guard.

#include <exception>
#include <functional>
#include <string>
#include <utility>

namespace vik::orchestrator {

class FaultGuard {
  public:
    using OnFault = std::function<void(const std::string &id, const std::string &stage, const std::string &what)>;
    explicit FaultGuard(OnFault on_fault) : on_fault_(std::move(on_fault)) {}

    // Runs `f`; an exception goes to the fault handler for (id, stage).
    template <class F> void operator()(const std::string &id, const std::string &stage, F &&f) const noexcept {
        try {
            f();
        } catch (const std::exception &e) {
            fault(id, stage, e.what());
        } catch (...) {
            fault(id, stage, "unknown exception");
        }
    }

    // `f` wrapped in the guard for (id, stage), for callbacks the loop runs later.
    template <class F> auto wrap(std::string id, std::string stage, F f) const {
        return [this, id = std::move(id), stage = std::move(stage), f = std::move(f)](auto &&...args) mutable {
            (*this)(id, stage, [&] { f(std::forward<decltype(args)>(args)...); });
        };
    }

  private:
    void fault(const std::string &id, const std::string &stage, const std::string &what) const noexcept {
        try {
            on_fault_(id, stage, what);
        } catch (...) {
        }
    }
    OnFault on_fault_;
};

} // namespace vik::orchestrator
