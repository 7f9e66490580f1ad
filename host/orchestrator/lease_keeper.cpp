#include "orchestrator/lease_keeper.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <mutex>

namespace vik::orchestrator {

namespace {

// A database call is bounded by the store's connect and statement timeouts; the runner's limit
// is only the last guard. The keeper's own deadline (valid_until_) is what protects the leases.
constexpr std::chrono::minutes kCallLimit{10};

} // namespace

LeaseKeeper::LeaseKeeper(boost::asio::io_context &io, SchedulerClock &clock, BlockingRunner &runner, store::Leases &leases,
                         Events events)
    : io_(io), clock_(clock), runner_(runner), leases_(leases), events_(std::move(events)), timer_(clock.make_timer(io)),
      ttl_(leases.ttl()) {}

LeaseKeeper::~LeaseKeeper() {
    timer_->cancel();
    renewer_.join(); // a renewal in flight ends within the store's connect and statement timeouts
}

void LeaseKeeper::start() {
    valid_until_ = clock_.now() + ttl_ * 2 / 3;
    holding_ = true;
    spdlog::info("leases kept host_id={} lease_ttl_ms={}", leases_.host_id(), ttl_.count());
    timer_->start(ttl_ / 6, [this] { tick(); });
}

void LeaseKeeper::tick() {
    timer_->start(ttl_ / 6, [this] { tick(); });
    auto now = clock_.now();
    if (holding_ && now >= valid_until_) {
        holding_ = false;
        auto pairs = leases_.drop_all();
        std::string why = "this host could not renew its leases in time (" +
                          (last_error_.empty() ? std::string("the renewal did not answer") : last_error_) +
                          "); other hosts may take the work over";
        spdlog::error("leases given up host_id={} pairs={}: {}", leases_.host_id(), pairs.size(), why);
        if (!pairs.empty()) events_.lost(pairs, why);
    }
    if (renewing_) return;
    renewing_ = true;
    auto answer = std::make_shared<Answer>();
    int64_t running = events_.running ? events_.running() : 0;
    bool adopt = adopting_;
    auto wall = clock_.wall_now();
    boost::asio::post(renewer_, [this, answer, running, adopt, wall, sent = now] {
        try {
            answer->lost = leases_.renew(running);
            if (answer->lost && adopt) answer->taken = leases_.take_over(wall);
        } catch (const std::exception &e) {
            answer->lost = std::unexpected(store::StoreError{store::StoreError::Kind::io, e.what()});
        }
        boost::asio::post(io_, [this, answer, sent] { renewed(*answer, sent); });
    });
}

void LeaseKeeper::renewed(Answer &answer, SchedulerClock::time_point sent) {
    renewing_ = false;
    if (!answer.lost) {
        if (last_error_.empty())
            spdlog::warn("lease renewal failed host_id={}: {}; running work goes on while its leases last", leases_.host_id(),
                         answer.lost.error().message);
        last_error_ = answer.lost.error().message;
        return;
    }
    if (!last_error_.empty()) spdlog::info("lease renewal works again host_id={}", leases_.host_id());
    last_error_.clear();
    // Leases given up meanwhile stay given up: the renewal renewed only those still held.
    if (!holding_) spdlog::info("leases held again host_id={}", leases_.host_id());
    holding_ = true;
    valid_until_ = sent + ttl_ * 2 / 3;
    if (!answer.lost->empty()) events_.lost(*answer.lost, "another host took its lease over after it expired");
    if (answer.taken) {
        if (!*answer.taken)
            spdlog::warn("taking over expired leases failed host_id={}: {}", leases_.host_id(), answer.taken->error().message);
        else
            events_.adopted(std::move(**answer.taken)); // the scheduler lets go of what it will not do
    }
}

void LeaseKeeper::let_lapse(std::vector<store::PairKey> pairs) {
    if (pairs.empty()) return;
    boost::asio::post(renewer_, [this, pairs = std::move(pairs)] {
        try {
            leases_.let_lapse(pairs);
        } catch (const std::exception &e) {
            spdlog::warn("letting leases lapse failed host_id={}: {}", leases_.host_id(), e.what());
        }
    });
}

void LeaseKeeper::acquire(std::vector<store::Leases::LeaseRequest> wanted, std::map<std::string, int64_t> state_limits,
                          std::function<void(std::set<store::PairKey>)> done) {
    auto got = std::make_shared<std::expected<std::vector<store::PairKey>, store::StoreError>>(std::vector<store::PairKey>{});
    runner_.run(
        kCallLimit,
        [this, got, wanted = std::move(wanted), limits = std::move(state_limits)]() -> StepResult {
            *got = leases_.acquire(wanted, limits);
            return {};
        },
        [this, got, done = std::move(done)](StepResult r) {
            std::set<store::PairKey> taken;
            if (!r.ok)
                spdlog::warn("taking leases failed host_id={}: {}; the issues wait for the next intake", leases_.host_id(),
                             r.error);
            else if (!*got)
                spdlog::warn("taking leases failed host_id={}: {}; the issues wait for the next intake", leases_.host_id(),
                             got->error().message);
            else
                taken.insert((*got)->begin(), (*got)->end());
            done(std::move(taken));
        });
}

void LeaseKeeper::resume(store::Leases::LeaseRequest queued, std::map<std::string, int64_t> state_limits,
                         std::function<void(std::expected<bool, std::string>)> done) {
    auto answer = std::make_shared<std::expected<bool, store::StoreError>>(false);
    runner_.run(
        kCallLimit,
        [this, answer, queued = std::move(queued), limits = std::move(state_limits)]() -> StepResult {
            *answer = leases_.resume(queued, limits);
            return {};
        },
        [answer, done = std::move(done)](StepResult r) {
            if (!r.ok) return done(std::unexpected(r.error));
            if (!*answer) return done(std::unexpected(answer->error().message));
            done(**answer);
        });
}

void LeaseKeeper::claim_firing(std::string schedule, store::WallTime due, std::function<void(bool)> done) {
    auto answer = std::make_shared<std::expected<bool, store::StoreError>>(true);
    runner_.run(
        kCallLimit,
        [this, answer, schedule, due]() -> StepResult {
            *answer = leases_.claim_firing(schedule, due);
            return {};
        },
        [this, answer, schedule, done = std::move(done)](StepResult r) {
            if (r.ok && answer->has_value()) return done(**answer);
            spdlog::warn("schedule firing not recorded for the cluster schedule={} host_id={}: {}; this host fires it", schedule,
                         leases_.host_id(), !r.ok ? r.error : answer->error().message);
            done(true);
        });
}

void LeaseKeeper::release_unused(std::vector<store::PairKey> pairs) {
    if (pairs.empty()) return;
    runner_.run(
        kCallLimit,
        [this, pairs = std::move(pairs)]() -> StepResult {
            leases_.release_unused(pairs);
            return {};
        },
        [](StepResult) {});
}

} // namespace vik::orchestrator
