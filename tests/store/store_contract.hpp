#pragma once
// The Store contract (host/store/store.hpp) as checks every backend must pass: the embedded SQLite
// store and the PostgreSQL store run the same ones (tests/store/*_store_test.cpp).
#include "store/store.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace vik::test {

store::WallTime at_ms(int64_t ms);
store::ClaimRecord claim(const std::string &issue, const std::string &stage);
store::RunRecord run(const std::string &id, const std::string &issue, const std::string &stage, int64_t start_ms);
store::RunRecord finished(store::RunRecord r, store::RunOutcome o, int64_t end_ms, int64_t tin, int64_t tout, int64_t tcache,
                          std::optional<double> cost);
void check_run(const store::RunRecord &a, const store::RunRecord &b);

// Every record kind written, read back after the store is opened again (`open` is called twice:
// a fresh store each time, on the same data), and recovery.
void check_round_trip(const std::function<std::unique_ptr<store::Store>()> &open);
// History newest first and per issue; stats per issue, stage and agent. `s` starts empty.
void check_history_and_stats(store::Store &s);

} // namespace vik::test
