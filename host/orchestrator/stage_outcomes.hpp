#pragma once
// Structured outcomes (issue.stages.S.outcome; docs/scheduling.md, "Structured outcomes"): the
// JSON object an agent writes to a file in its workspace, read and validated after a completed
// run, and kept per issue and stage for later prompts and gate commands (`outcomes.<stage>`).
//
// StageOutcomes owns the outcomes the host knows (one per issue and stage: the newest valid
// one) and mirrors them into the store, so a restart keeps them. The free functions do the file
// work: the file must stay inside the workspace (a symbolic link out of it is refused), be at
// most kMaxOutcomeBytes, hold a JSON object, and have every declared field with its type.
//
// Threading: the loop's thread. The files are small and local; reading one is bounded.

#include "store/store.hpp"
#include "workflow/config.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <expected>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace vik::orchestrator {

// The outcome file of a run, validated: the object, or why it is not a valid outcome.
std::expected<boost::json::object, std::string> read_outcome(const std::filesystem::path &workdir,
                                                             const workflow::OutcomeSpec &spec);
// Removes a previous run's outcome file before a run starts (a stale file must not count).
// Returns an error when the path leaves the workspace or cannot be removed.
std::expected<void, std::string> clear_outcome(const std::filesystem::path &workdir, const workflow::OutcomeSpec &spec);
// Whether the outcome passes the spec's succeed_if (true when there is none); an error when the
// condition cannot be evaluated (e.g. it names a field the outcome lacks).
std::expected<bool, std::string> outcome_succeeded(const workflow::OutcomeSpec &spec, const std::string &stage_name,
                                                   const boost::json::object &outcome);

class StageOutcomes {
  public:
    explicit StageOutcomes(store::Store *store) : store_(store) {}

    // The newest valid outcome of (issue, stage); recorded in the store.
    void record(const std::string &issue_id, const std::string &stage, boost::json::object outcome,
                std::chrono::system_clock::time_point at);
    // {stage: outcome} of an issue (empty when none): the templates' `outcomes`.
    boost::json::object of(const std::string &issue_id) const;
    // The issue is done (terminal, its workspace removed): its outcomes go.
    void forget(const std::string &issue_id);
    // What the store kept, at start-up.
    void restore(const std::vector<store::OutcomeRecord> &records);

  private:
    store::Store *store_;
    std::map<std::string, boost::json::object> by_issue_; // issue id -> {stage: outcome}
};

} // namespace vik::orchestrator
