// Cron expressions and time zones (schedule/cron.hpp) against the system's tzdata: the next
// firing in local time, across DST changes, and what is refused.
#include "schedule/cron.hpp"

#include <catch2/catch.hpp>

using namespace vik::schedule;
namespace chr = std::chrono;

namespace {

// A UTC instant from "YYYY-MM-DD HH:MM".
chr::sys_seconds utc(int y, unsigned m, unsigned d, int hh, int mm) {
    return chr::sys_days(chr::year(y) / m / d) + chr::hours(hh) + chr::minutes(mm);
}

chr::sys_seconds next(const std::string &cron, const std::string &zone, chr::sys_seconds after) {
    auto c = CronExpr::parse(cron);
    REQUIRE(c.has_value());
    auto z = TimeZone::load(zone);
    REQUIRE(z.has_value());
    auto n = c->next_after(after, *z);
    REQUIRE(n.has_value());
    return *n;
}

} // namespace

TEST_CASE("cron: the next firing in UTC for the usual forms", "[schedule]") {
    CHECK(next("0 3 * * *", "UTC", utc(2026, 12, 6, 23, 40)) == utc(2026, 12, 7, 3, 0));
    CHECK(next("0 3 * * *", "UTC", utc(2026, 12, 7, 3, 0)) == utc(2026, 12, 8, 3, 0)); // strictly after
    CHECK(next("*/15 * * * *", "UTC", utc(2026, 12, 7, 10, 7)) == utc(2026, 12, 7, 10, 15));
    CHECK(next("30 9 * * MON-FRI", "UTC", utc(2026, 12, 5, 12, 0)) == utc(2026, 12, 7, 9, 30)); // Sat -> Mon
    CHECK(next("0 0 1 jan *", "UTC", utc(2026, 12, 7, 0, 0)) == utc(2027, 1, 1, 0, 0));
    CHECK(next("@weekly", "UTC", utc(2026, 12, 7, 0, 0)) == utc(2026, 12, 13, 0, 0));     // Sunday
    CHECK(next("0 12 * * 7", "UTC", utc(2026, 12, 7, 0, 0)) == utc(2026, 12, 13, 12, 0)); // 7 is Sunday
    CHECK(next("0 0 29 2 *", "UTC", utc(2026, 12, 7, 0, 0)) == utc(2028, 2, 29, 0, 0));
    // Both day fields restricted: either matches (the 13th, or a Friday).
    CHECK(next("0 0 13 * 5", "UTC", utc(2026, 12, 7, 0, 0)) == utc(2026, 12, 11, 0, 0));
}

TEST_CASE("cron: local time in a named zone, across DST changes", "[schedule]") {
    // Berlin is UTC+1 in winter, UTC+2 in summer.
    CHECK(next("0 3 * * *", "Europe/Berlin", utc(2026, 12, 6, 23, 40)) == utc(2026, 12, 7, 2, 0));
    CHECK(next("0 3 * * *", "Europe/Berlin", utc(2026, 7, 1, 12, 0)) == utc(2026, 7, 2, 1, 0));
    // 2026-03-29: 02:00 local jumps to 03:00; a 02:30 job does not fire that day.
    CHECK(next("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 30, 0, 30));
    // A job just after midnight following the short day is not skipped.
    CHECK(next("30 0 * * *", "Europe/Berlin", utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 28, 23, 30));
    CHECK(next("30 0 * * *", "Europe/Berlin", utc(2026, 3, 28, 23, 30)) == utc(2026, 3, 29, 22, 30));
    // A zone with a half-hour offset.
    CHECK(next("0 9 * * *", "Asia/Kolkata", utc(2026, 12, 7, 0, 0)) == utc(2026, 12, 7, 3, 30));
}

TEST_CASE("cron: what is refused says why", "[schedule]") {
    auto error = [](const std::string &cron) {
        auto c = CronExpr::parse(cron);
        REQUIRE_FALSE(c.has_value());
        return c.error();
    };
    CHECK(error("0 3 * *") == "'0 3 * *' has 4 field(s); a cron expression has five: minute hour day-of-month month "
                              "day-of-week (or @hourly, @daily, @weekly, @monthly, @yearly)");
    CHECK(error("60 3 * * *") == "'60 3 * * *': minute 60 is out of range 0-59");
    CHECK(error("0 3 * * FUN") == "'0 3 * * FUN': 'FUN' is not a valid day of week");
    CHECK(error("*/0 * * * *") == "'*/0 * * * *': '*/0': a step must be a positive number");
    CHECK(error("5-1 * * * *") == "'5-1 * * * *': '5-1': the range runs backwards");
    auto c = CronExpr::parse("0 0 30 2 *");
    REQUIRE(c.has_value());
    CHECK_FALSE(c->next_after(utc(2026, 1, 1, 0, 0), *TimeZone::load("UTC")).has_value()); // never
    CHECK(TimeZone::load("Mars/Olympus").error() ==
          "time zone 'Mars/Olympus' is not in /usr/share/zoneinfo (install the tzdata package, or use UTC or an IANA name "
          "such as Europe/Berlin)");
    CHECK(TimeZone::load("../etc/passwd").error() ==
          "'../etc/passwd' is not a time zone name (use UTC or an IANA name such as Europe/Berlin)");
}

TEST_CASE("cron: zones whose POSIX rule Boost misreads or refuses use the table", "[schedule]") {
    // Dublin: IST in summer (UTC+1), GMT in winter (a "negative DST" in its rule).
    CHECK(next("0 9 * * *", "Europe/Dublin", utc(2026, 12, 7, 0, 0)) == utc(2026, 12, 7, 9, 0));
    CHECK(next("0 9 * * *", "Europe/Dublin", utc(2026, 7, 7, 0, 0)) == utc(2026, 7, 7, 8, 0));
    // Jerusalem's rule has hours past 24; Santiago is in the southern hemisphere (summer in December).
    CHECK(next("0 9 * * *", "Asia/Jerusalem", utc(2026, 12, 7, 0, 0)) == utc(2026, 12, 7, 7, 0));
    CHECK(next("0 9 * * *", "America/Santiago", utc(2026, 12, 7, 0, 0)) == utc(2026, 12, 7, 12, 0));
    // Lord Howe: +10:30 in winter, +11 in summer (December).
    CHECK(next("0 9 * * *", "Australia/Lord_Howe", utc(2026, 12, 6, 0, 0)) == utc(2026, 12, 6, 22, 0));
    // A quoted abbreviation in the rule (<-03>3), past the table.
    CHECK(next("0 9 * * *", "America/Sao_Paulo", utc(2040, 1, 1, 0, 0)) == utc(2040, 1, 1, 12, 0));
    // Berlin past the table: its rule takes over, DST included.
    CHECK(next("0 3 * * *", "Europe/Berlin", utc(2040, 7, 1, 12, 0)) == utc(2040, 7, 2, 1, 0));
}

TEST_CASE("cron: a day field starting with * does not restrict, as in Vixie cron", "[schedule]") {
    // */2 days AND Monday: only Mondays with an odd day of month (1, 3, ...).
    CHECK(next("0 0 */2 * MON", "UTC", utc(2026, 12, 7, 0, 0)) == utc(2026, 12, 21, 0, 0));
    CHECK(next("0 0 10-20/5 * *", "UTC", utc(2026, 12, 10, 0, 0)) == utc(2026, 12, 15, 0, 0));
    CHECK_FALSE(CronExpr::parse("1, * * * *").has_value());
}
