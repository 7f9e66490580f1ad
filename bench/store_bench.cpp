// Prints how many records per second reach disk through SqliteStore's writer thread, and how
// long a write call takes on the caller's (the scheduler loop's) thread. Run:
//   build/bin/vik_store_bench [records]
#include "store/sqlite_store.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

int main(int argc, char **argv) {
    using namespace std::chrono;
    size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
    auto dir = std::filesystem::temp_directory_path() / ("vik-store-bench-" + std::to_string(::getpid()));
    auto store = vik::store::SqliteStore::open(dir / "vik.db");
    if (!store) {
        std::fprintf(stderr, "%s\n", store.error().message.c_str());
        return 1;
    }
    auto &s = **store;
    auto t0 = steady_clock::now();
    double worst_call_us = 0;
    for (size_t i = 0; i < n; ++i) {
        vik::store::RunRecord r;
        r.run_id = "run-" + std::to_string(i);
        r.issue_id = "ISSUE-" + std::to_string(i % 500);
        r.stage = i % 2 ? "plan" : "code";
        r.agent = "codex";
        r.started_at = system_clock::now();
        r.tokens_in = 1000;
        auto c0 = steady_clock::now();
        s.record_run(r);
        worst_call_us = std::max(worst_call_us, duration<double, std::micro>(steady_clock::now() - c0).count());
    }
    auto queued = steady_clock::now();
    if (auto f = s.flush(minutes(5)); !f) {
        std::fprintf(stderr, "%s\n", f.error().message.c_str());
        return 1;
    }
    auto done = steady_clock::now();
    double total = duration<double>(done - t0).count();
    std::printf("store: %zu run records, %.0f records/s to disk, %llu transactions, enqueue %.2f us/record "
                "(worst %.0f us)\n",
                n, static_cast<double>(n) / total, static_cast<unsigned long long>(s.transactions()),
                duration<double, std::micro>(queued - t0).count() / static_cast<double>(n), worst_call_us);
    (void)s.close();
    std::filesystem::remove_all(dir);
    return 0;
}
