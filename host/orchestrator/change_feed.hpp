#pragma once
// The listeners of operator surfaces (operator_surface.hpp) and the one place changes are
// published to them. Owned by the scheduler; the parts that see a change happen publish it.
// A listener may unsubscribe (itself or another) from inside its call.
//
// Threading: the loop's thread only.

#include "orchestrator/operator_surface.hpp"

#include <cstdint>
#include <map>
#include <vector>

namespace vik::orchestrator {

class ChangeFeed {
  public:
    uint64_t subscribe(OperatorSurface::Listener listener, bool with_session_events) {
        uint64_t h = next_++;
        listeners_[h] = Entry{std::move(listener), with_session_events};
        return h;
    }
    void unsubscribe(uint64_t handle) { listeners_.erase(handle); }
    bool empty() const { return listeners_.empty(); }
    // Whether anyone listens to session events (they are only built when someone does).
    bool wants_session_events() const {
        for (const auto &[h, e] : listeners_)
            if (e.session_events) return true;
        return false;
    }
    void publish(const Change &change) {
        if (listeners_.empty()) return;
        bool session_event = change.kind == "session_event";
        // Handles, not iterators: a listener may unsubscribe during the call.
        std::vector<uint64_t> handles;
        for (const auto &[h, e] : listeners_)
            if (!session_event || e.session_events) handles.push_back(h);
        for (uint64_t h : handles)
            if (auto it = listeners_.find(h); it != listeners_.end()) {
                auto listener = it->second.listener; // it may erase itself
                listener(change);
            }
    }

  private:
    struct Entry {
        OperatorSurface::Listener listener;
        bool session_events = false;
    };
    std::map<uint64_t, Entry> listeners_;
    uint64_t next_ = 1;
};

} // namespace vik::orchestrator
