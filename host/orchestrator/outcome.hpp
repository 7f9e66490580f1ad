#pragma once
// Why the host stopped a session, and how a stage ended: the words the parts of the run loop
// speak to each other (session_supervisor.hpp maps a runtime's status and the cancel reason to
// one Outcome; the scheduler maps an Outcome to a claim transition).

namespace vik::orchestrator {

// Why the host cancelled a running session; it decides what follows.
enum class CancelReason {
    none,          // not cancelled by the host
    shutdown,      // vik-host is stopping
    timeout,       // the profile's overall timeout passed
    stall,         // no agent event within the profile's stall timeout
    terminal,      // the issue reached a terminal state: its workspace goes once the stage ended
    left,          // the issue left the stage's state, or is no longer visible
    operator_,     // `vik-host issue cancel`
    fault,         // a loop handler of the issue broke an invariant
    invalid_event, // `run --strict`: the runtime plugin sent an event outside the vocabulary
    lease_lost,    // several hosts: this host lost the pair's lease (leases.hpp); another host has it
};

// How a stage ended, from launch to after_run.
enum class Outcome {
    completed,           // the session completed: a continuation may follow
    failed,              // the launch or the session failed (a timeout or stall too): retry with backoff
    dropped,             // nothing follows (cancelled because the issue moved or the host stops)
    dropped_terminal,    // cancelled because the issue is terminal: nothing follows, the workspace goes
    blocked_by_operator, // blocked until a state change or an operator retry
    blocked_by_fault,    // the same, after a broken invariant
    input_required,      // the agent needs a human: the pair is parked until an operator answers
    resume_failed,       // the run could not continue its conversation: a fresh one follows at once
    awaiting_approval,   // completed (and passed its gate's command): waits for a human's verdict
};

} // namespace vik::orchestrator
