#include "schedule/cron.hpp"

#include <boost/date_time/local_time/local_time.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <vector>

namespace vik::schedule {

namespace chr = std::chrono;

// A zone's offsets: the TZif file's transition table (fat tzdata files list every transition up
// to 2037), then its POSIX rule for later instants when Boost can read it, else the last offset.
struct TimeZone::Rule {
    std::vector<int64_t> transitions;             // UTC seconds, ascending
    std::vector<int32_t> offsets;                 // the UT offset from each transition on
    int32_t initial_offset = 0;                   // before the first transition
    boost::local_time::time_zone_ptr after_table; // may be null
};

namespace {

std::string lower(std::string s) {
    for (auto &c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

uint32_t be32(const std::string &d, size_t at) {
    return static_cast<uint32_t>(static_cast<unsigned char>(d[at])) << 24 |
           static_cast<uint32_t>(static_cast<unsigned char>(d[at + 1])) << 16 |
           static_cast<uint32_t>(static_cast<unsigned char>(d[at + 2])) << 8 | static_cast<unsigned char>(d[at + 3]);
}

// The version 2+ (64-bit) data block of a TZif file (RFC 8536): transitions and offsets.
std::expected<void, std::string> read_table(const std::string &d, TimeZone::Rule &rule) {
    auto counts = [&](size_t at, size_t(&c)[6]) {
        for (size_t i = 0; i < 6; ++i)
            c[i] = be32(d, at + 20 + 4 * i);
    };
    if (d.size() < 44 || d.compare(0, 4, "TZif") != 0 || d[4] < '2')
        return std::unexpected("it is not a TZif file of version 2 or later");
    size_t c[6]; // isutcnt isstdcnt leapcnt timecnt typecnt charcnt
    counts(0, c);
    size_t v1 = 44 + c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    if (d.size() < v1 + 44 || d.compare(v1, 4, "TZif") != 0) return std::unexpected("its 64-bit data is missing");
    counts(v1, c);
    size_t at = v1 + 44, times = at, types = times + c[3] * 8, infos = types + c[3];
    if (c[4] == 0 || d.size() < infos + c[4] * 6) return std::unexpected("its data is truncated");
    auto offset_of = [&](size_t type) { return static_cast<int32_t>(be32(d, infos + type * 6)); };
    for (size_t i = 0; i < c[3]; ++i) {
        uint64_t hi = be32(d, times + i * 8), lo = be32(d, times + i * 8 + 4);
        size_t type = static_cast<unsigned char>(d[types + i]);
        if (type >= c[4]) return std::unexpected("its data is corrupt");
        rule.transitions.push_back(static_cast<int64_t>(hi << 32 | lo));
        rule.offsets.push_back(offset_of(type));
    }
    rule.initial_offset = offset_of(0);
    return {};
}

// The POSIX TZ string a TZif file (version 2 or later) ends with: "\n<TZ>\n".
std::expected<std::string, std::string> footer_of(const std::string &data) {
    if (data.size() < 44 || data.compare(0, 4, "TZif") != 0) return std::unexpected("it is not a TZif file");
    if (data.back() != '\n') return std::unexpected("it has no POSIX TZ rule at its end (a TZif version 1 file?)");
    size_t start = data.rfind('\n', data.size() - 2);
    if (start == std::string::npos) return std::unexpected("it has no POSIX TZ rule at its end");
    return data.substr(start + 1, data.size() - start - 2);
}

// Boost reads abbreviations of letters only: a quoted one (<+0330>) becomes a placeholder; the
// abbreviation does not matter for the offsets.
std::string unquote_names(const std::string &tz) {
    std::string out;
    for (size_t i = 0; i < tz.size(); ++i) {
        if (tz[i] != '<') {
            out += tz[i];
            continue;
        }
        size_t close = tz.find('>', i);
        if (close == std::string::npos) return tz;
        out += "ZZZ";
        i = close;
    }
    return out;
}

// POSIX counts a TZ offset positive west of Greenwich ("CET-1" is UTC+1); Boost counts it
// positive east. The standard and daylight offsets are flipped; the rule's times are local.
std::string boost_signs(const std::string &tz) {
    std::string out;
    size_t i = 0;
    auto name = [&] {
        while (i < tz.size() && std::isalpha(static_cast<unsigned char>(tz[i])))
            out += tz[i++];
    };
    auto offset = [&] {
        if (i >= tz.size() || !(tz[i] == '+' || tz[i] == '-' || std::isdigit(static_cast<unsigned char>(tz[i])))) return;
        char sign = tz[i] == '-' ? '-' : '+';
        if (tz[i] == '+' || tz[i] == '-') ++i;
        out += sign == '-' ? '+' : '-';
        while (i < tz.size() && (std::isdigit(static_cast<unsigned char>(tz[i])) || tz[i] == ':'))
            out += tz[i++];
    };
    name();
    offset();
    name();
    offset();
    out += tz.substr(i);
    return out;
}

// One cron field as a bit set over [lo, hi].
std::expected<uint64_t, std::string> field(const std::string &text, int lo, int hi, const std::vector<std::string> &names,
                                           int name_base, const std::string &what) {
    auto value = [&](const std::string &s) -> std::expected<int, std::string> {
        if (!s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }) && s.size() < 4) {
            int v = std::stoi(s);
            if (v < lo || v > hi)
                return std::unexpected(what + " " + s + " is out of range " + std::to_string(lo) + "-" + std::to_string(hi));
            return v;
        }
        auto it = std::find(names.begin(), names.end(), lower(s));
        if (it != names.end()) return static_cast<int>(it - names.begin()) + name_base;
        return std::unexpected("'" + s + "' is not a valid " + what);
    };
    uint64_t bits = 0;
    if (text.empty() || text.back() == ',') return std::unexpected("an empty item in the " + what + " field '" + text + "'");
    std::stringstream items(text);
    std::string item;
    while (std::getline(items, item, ',')) {
        if (item.empty()) return std::unexpected("an empty item in the " + what + " field '" + text + "'");
        int step = 1;
        std::string range = item;
        if (size_t slash = item.find('/'); slash != std::string::npos) {
            std::string s = item.substr(slash + 1);
            if (s.empty() || s.size() > 3 || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }) ||
                std::stoi(s) == 0)
                return std::unexpected("'" + item + "': a step must be a positive number");
            step = std::stoi(s);
            range = item.substr(0, slash);
        }
        int from = lo, to = hi;
        if (range != "*") {
            size_t dash = range.find('-');
            auto a = value(range.substr(0, dash));
            if (!a) return std::unexpected(a.error());
            from = *a;
            to = item.find('/') != std::string::npos && dash == std::string::npos ? hi : *a;
            if (dash != std::string::npos) {
                auto b = value(range.substr(dash + 1));
                if (!b) return std::unexpected(b.error());
                to = *b;
                if (to < from) return std::unexpected("'" + item + "': the range runs backwards");
            }
        }
        for (int v = from; v <= to; v += step)
            bits |= uint64_t{1} << v;
    }
    return bits;
}

const std::vector<std::string> kMonths = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
const std::vector<std::string> kDays = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

} // namespace

std::expected<TimeZone, std::string> TimeZone::load(const std::string &name, const std::string &zoneinfo_dir) {
    TimeZone z;
    z.name_ = name;
    if (name == "UTC" || name == "Etc/UTC") return z;
    bool plain = !name.empty() && name.front() != '/' && name.find("..") == std::string::npos &&
                 std::all_of(name.begin(), name.end(),
                             [](unsigned char c) { return std::isalnum(c) || c == '/' || c == '_' || c == '-' || c == '+'; });
    if (!plain) return std::unexpected("'" + name + "' is not a time zone name (use UTC or an IANA name such as Europe/Berlin)");
    std::ifstream in(zoneinfo_dir + "/" + name, std::ios::binary);
    if (!in)
        return std::unexpected("time zone '" + name + "' is not in " + zoneinfo_dir +
                               " (install the tzdata package, or use UTC or an IANA name such as Europe/Berlin)");
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto rule = std::make_shared<Rule>();
    if (auto table = read_table(data, *rule); !table)
        return std::unexpected("time zone '" + name + "' cannot be used: " + table.error());
    // Past the table (2037 in tzdata's fat files) the POSIX rule, when Boost reads it and agrees
    // with the table's last transitions; otherwise (a negative DST as Europe/Dublin's, rule hours
    // past 24) the last offset goes on.
    if (auto footer = footer_of(data); footer && !footer->empty()) {
        try {
            rule->after_table =
                boost::local_time::time_zone_ptr(new boost::local_time::posix_time_zone(boost_signs(unquote_names(*footer))));
        } catch (const std::exception &) {
            rule->after_table.reset();
        }
    }
    z.rule_ = rule;
    const auto &tr = rule->transitions;
    for (size_t i = tr.size() >= 2 ? tr.size() - 2 : 0; rule->after_table && i < tr.size(); ++i) {
        chr::sys_seconds probe{chr::seconds(tr[i] + 86400)};
        if (z.rule_local(probe) != probe + chr::seconds(rule->offsets[i])) rule->after_table.reset();
    }
    return z;
}

chr::sys_seconds TimeZone::rule_local(chr::sys_seconds utc) const {
    namespace pt = boost::posix_time;
    static const pt::ptime epoch(boost::gregorian::date(1970, 1, 1));
    pt::ptime at = epoch + pt::seconds(utc.time_since_epoch().count());
    boost::local_time::local_date_time local(at, rule_->after_table);
    return chr::sys_seconds(chr::seconds((local.local_time() - epoch).total_seconds()));
}

chr::sys_seconds TimeZone::to_local(chr::sys_seconds utc) const {
    if (!rule_) return utc;
    int64_t t = utc.time_since_epoch().count();
    const auto &tr = rule_->transitions;
    if (!tr.empty() && t >= tr.back() && rule_->after_table) return rule_local(utc);
    auto it = std::upper_bound(tr.begin(), tr.end(), t);
    int32_t off = it == tr.begin() ? rule_->initial_offset : rule_->offsets[static_cast<size_t>(it - tr.begin()) - 1];
    return utc + chr::seconds(off);
}

std::expected<CronExpr, std::string> CronExpr::parse(const std::string &text) {
    static const std::vector<std::pair<std::string, std::string>> macros = {
        {"@hourly", "0 * * * *"},  {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"}, {"@weekly", "0 0 * * 0"},
        {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}};
    std::string spec = text;
    for (const auto &[m, expansion] : macros)
        if (lower(text) == m) spec = expansion;
    std::vector<std::string> parts;
    std::stringstream words(spec);
    for (std::string w; words >> w;)
        parts.push_back(w);
    if (parts.size() != 5)
        return std::unexpected("'" + text + "' has " + std::to_string(parts.size()) +
                               " field(s); a cron expression has five: minute hour day-of-month month day-of-week "
                               "(or @hourly, @daily, @weekly, @monthly, @yearly)");
    CronExpr c;
    auto minutes = field(parts[0], 0, 59, {}, 0, "minute");
    auto hours = field(parts[1], 0, 23, {}, 0, "hour");
    auto days = field(parts[2], 1, 31, {}, 0, "day of month");
    auto months = field(parts[3], 1, 12, kMonths, 1, "month");
    auto weekdays = field(parts[4], 0, 7, kDays, 0, "day of week");
    for (const auto *f : {&minutes, &hours, &days, &months, &weekdays})
        if (!*f) return std::unexpected("'" + text + "': " + f->error());
    c.minutes_ = *minutes;
    c.hours_ = static_cast<uint32_t>(*hours);
    c.days_ = static_cast<uint32_t>(*days);
    c.months_ = static_cast<uint32_t>(*months);
    uint64_t w = *weekdays;
    if (w & (uint64_t{1} << 7)) w |= 1; // 7 is Sunday too
    c.weekdays_ = static_cast<uint8_t>(w & 0x7f);
    // As Vixie cron: a day field starting with `*` (`*`, `*/2`) does not restrict.
    c.days_restricted_ = parts[2][0] != '*';
    c.weekdays_restricted_ = parts[4][0] != '*';
    return c;
}

bool CronExpr::matches_local(chr::sys_seconds local) const {
    auto day = chr::floor<chr::days>(local);
    chr::year_month_day ymd(day);
    chr::hh_mm_ss hms(local - day);
    if (!(months_ >> static_cast<unsigned>(ymd.month()) & 1)) return false;
    bool dom = days_ >> static_cast<unsigned>(ymd.day()) & 1;
    bool dow = weekdays_ >> chr::weekday(day).c_encoding() & 1;
    bool day_ok = days_restricted_ && weekdays_restricted_ ? (dom || dow) : (dom && dow);
    if (!day_ok) return false;
    if (!(hours_ >> hms.hours().count() & 1)) return false;
    return minutes_ >> hms.minutes().count() & 1;
}

std::optional<chr::sys_seconds> CronExpr::next_after(chr::sys_seconds after, const TimeZone &zone) const {
    chr::sys_seconds t = chr::floor<chr::minutes>(after) + chr::minutes(1);
    const chr::sys_seconds limit = t + chr::days(5 * 366);
    while (t < limit) {
        chr::sys_seconds local = zone.to_local(t);
        auto day = chr::floor<chr::days>(local);
        auto minute_of_day = chr::duration_cast<chr::minutes>(local - day).count();
        chr::year_month_day ymd(day);
        bool dom = days_ >> static_cast<unsigned>(ymd.day()) & 1;
        bool dow = weekdays_ >> chr::weekday(day).c_encoding() & 1;
        bool day_ok = (months_ >> static_cast<unsigned>(ymd.month()) & 1) &&
                      (days_restricted_ && weekdays_restricted_ ? (dom || dow) : (dom && dow));
        if (!day_ok) { // to the next local day, an hour early at most (a DST change may shorten the day)
            t += chr::minutes(std::max<int64_t>(1, 1440 - minute_of_day - 60));
            continue;
        }
        if (!(hours_ >> (minute_of_day / 60) & 1)) {
            t += chr::minutes(60 - minute_of_day % 60);
            continue;
        }
        if (!(minutes_ >> (minute_of_day % 60) & 1)) {
            t += chr::minutes(1);
            continue;
        }
        return t;
    }
    return std::nullopt;
}

} // namespace vik::schedule
