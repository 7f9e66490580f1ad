#pragma once
// Cron schedules in a named time zone (the workflow's `schedules:`; docs/scheduling.md,
// "Schedules").
//
// CronExpr: the five fields of crontab(5) (minute hour day-of-month month day-of-week) with `*`,
// numbers, ranges `a-b`, steps `*/n` `a-b/n` `a/n`, lists, month and day names (JAN, MON), 7 as
// Sunday, and @hourly @daily @midnight @weekly @monthly @yearly @annually. As in Vixie cron, when
// both day fields are restricted a day matching either runs.
//
// TimeZone: "UTC" or an IANA name, read from its TZif file under /usr/share/zoneinfo (the tzdata
// package): the transition table (every change up to 2037 in Debian's files, announced ones such
// as Casablanca's included), then the POSIX TZ rule at the file's end for later instants.
//
// next_after(t): the first minute after t whose local wall time matches. Time is walked in UTC,
// so a local time skipped by a DST change does not fire that day, and one repeated by it fires
// at each instant it occurs.

#include <chrono>
#include <expected>
#include <memory>
#include <optional>
#include <string>

namespace vik::schedule {

class TimeZone {
  public:
    // Throws nothing; the error names the zone and what to do.
    static std::expected<TimeZone, std::string> load(const std::string &name,
                                                     const std::string &zoneinfo_dir = "/usr/share/zoneinfo");
    const std::string &name() const { return name_; }
    // The local wall time (as a time_point in "local seconds") of a UTC instant.
    std::chrono::sys_seconds to_local(std::chrono::sys_seconds utc) const;

    struct Rule; // the zone's transitions and rule (cron.cpp)
  private:
    std::chrono::sys_seconds rule_local(std::chrono::sys_seconds utc) const; // by the POSIX rule past the table
    std::string name_;
    std::shared_ptr<const Rule> rule_; // null: UTC
};

class CronExpr {
  public:
    static std::expected<CronExpr, std::string> parse(const std::string &text);
    bool matches_local(std::chrono::sys_seconds local) const;
    // The first whole minute strictly after `after` whose local time in `zone` matches; nullopt
    // when none comes within five years (e.g. 30 February).
    std::optional<std::chrono::sys_seconds> next_after(std::chrono::sys_seconds after, const TimeZone &zone) const;

  private:
    uint64_t minutes_ = 0; // bit i: minute i
    uint32_t hours_ = 0, days_ = 0, months_ = 0;
    uint8_t weekdays_ = 0; // bit 0: Sunday
    bool days_restricted_ = false, weekdays_restricted_ = false;
};

} // namespace vik::schedule
