#include "orchestrator/schedule_runner.hpp"

#include "util/ids_and_time.hpp"

#include <spdlog/spdlog.h>

namespace vik::orchestrator {

namespace chr = std::chrono;

chr::sys_seconds ScheduleRunner::wall_now() const { return chr::time_point_cast<chr::seconds>(clock_.wall_now()); }

void ScheduleRunner::start(const std::vector<workflow::Schedule> &schedules,
                           const std::vector<store::ScheduleRecord> &last_fired) {
    chr::sys_seconds now = wall_now();
    for (const auto &s : schedules) {
        auto cron = schedule::CronExpr::parse(s.cron);
        auto zone = schedule::TimeZone::load(s.time_zone);
        if (!cron || !zone) {
            spdlog::error("schedule not armed schedule={}: {}", s.name, !cron ? cron.error() : zone.error());
            continue;
        }
        Entry &e = entries_[s.name];
        e.schedule = s;
        e.cron = *cron;
        e.zone = *zone;
        e.timer = clock_.make_timer(io_);
        std::optional<chr::sys_seconds> last;
        for (const auto &r : last_fired)
            if (r.name == s.name) last = chr::time_point_cast<chr::seconds>(r.last_fired);
        // Firings due while the host was down: the newest one stands for them all, and is
        // recorded either way, so a quick second restart does not see them again.
        if (last) {
            std::optional<chr::sys_seconds> missed;
            for (auto t = e.cron.next_after(*last, e.zone); t && *t <= now; t = e.cron.next_after(*t, e.zone))
                missed = t;
            if (missed && s.catch_up) {
                spdlog::warn("schedule missed a firing while vik-host was down schedule={} due={}; running it once now "
                             "(missed: run_once)",
                             s.name, util::rfc3339_utc(*missed));
                fire(e, *missed);
            } else if (missed) {
                spdlog::warn("schedule missed a firing while vik-host was down schedule={} due={}; skipped (missed: skip)",
                             s.name, util::rfc3339_utc(*missed));
                if (store_) store_->record_schedule(store::ScheduleRecord{s.name, *missed});
            }
        }
        arm(e, now);
    }
}

void ScheduleRunner::arm(Entry &e, chr::sys_seconds after) {
    auto next = e.cron.next_after(after, e.zone);
    if (!next) {
        spdlog::error("schedule has no next firing schedule={} cron='{}'", e.schedule.name, e.schedule.cron);
        return;
    }
    e.next = *next;
    spdlog::info("schedule armed schedule={} next={} time_zone={}", e.schedule.name, util::rfc3339_utc(*next), e.zone.name());
    wait(e);
}

// Waits in steps of at most an hour, each measured again from the wall clock: a machine that
// slept or a clock that was set still fires at the right wall time.
void ScheduleRunner::wait(Entry &e) {
    auto delay = chr::duration_cast<chr::milliseconds>(e.next - clock_.wall_now());
    delay = std::clamp(delay, chr::milliseconds(0), chr::milliseconds(chr::hours(1)));
    std::string name = e.schedule.name;
    e.timer->start(delay, [this, name] {
        guard_("", "", [&] {
            auto it = entries_.find(name);
            if (it == entries_.end() || stopped_) return;
            Entry &entry = it->second;
            if (clock_.wall_now() < entry.next) return wait(entry);
            chr::sys_seconds due = entry.next;
            fire(entry, due);
            arm(entry, std::max(due, wall_now())); // strictly after this firing
        });
    });
}

void ScheduleRunner::fire(Entry &e, chr::sys_seconds due) {
    if (!claim_) return fire_now(e.schedule, due);
    // Several hosts: every host's timer goes off; the first to record the due time fires it.
    claim_(e.schedule.name, due, [this, name = e.schedule.name, due](bool ours) {
        guard_("", "", [&] {
            auto it = entries_.find(name);
            if (it == entries_.end()) return;
            // A host that began to stop meanwhile still fires what it claimed: the others take the
            // claim as done, and another host runs the stage the state change brings.
            if (!ours) {
                spdlog::info("schedule fired by another host schedule={} due={}", name, util::rfc3339_utc(due));
                return;
            }
            fire_now(it->second.schedule, due);
        });
    });
}

void ScheduleRunner::fire_now(const workflow::Schedule &schedule, chr::sys_seconds due) {
    spdlog::info("schedule fired schedule={} due={} issue_id={} state={}", schedule.name, util::rfc3339_utc(due), schedule.issue,
                 schedule.state);
    // Recorded first: a crash during the firing does not fire it twice after a restart.
    if (store_) store_->record_schedule(store::ScheduleRecord{schedule.name, due});
    fire_(schedule, due);
}

void ScheduleRunner::stop() {
    stopped_ = true;
    for (auto &[name, e] : entries_)
        if (e.timer) e.timer->cancel();
}

} // namespace vik::orchestrator
