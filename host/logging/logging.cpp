#include "logging/logging.hpp"

#include "util/ids_and_time.hpp"
#include "util/private_files.hpp"
#include "util/untrusted_text.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <vik/event_text.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <vector>

namespace vik::logging {

namespace fs = std::filesystem;

namespace {

// tracing-subscriber's default timer: RFC 3339 UTC with microseconds.
std::string timestamp_micros(std::chrono::system_clock::time_point t) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
    auto secs = static_cast<std::time_t>(us / 1000000 - (us % 1000000 < 0 ? 1 : 0));
    long frac = static_cast<long>(us - static_cast<long long>(secs) * 1000000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return buf;
}

// ` key=` starting at i (after a space): the position of its '=', or npos.
size_t field_at(const std::string &s, size_t i) {
    if (i == 0 || i >= s.size() || s[i - 1] != ' ') return std::string::npos;
    auto lower = [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; };
    if (!lower(s[i])) return std::string::npos;
    size_t j = i + 1;
    while (j < s.size() && (lower(s[j]) || (s[j] >= '0' && s[j] <= '9')))
        ++j;
    return j < s.size() && s[j] == '=' ? j : std::string::npos;
}

size_t next_field(const std::string &s, size_t from) {
    for (size_t i = std::max<size_t>(from, 1); i < s.size(); ++i)
        if (s[i - 1] == ' ' && field_at(s, i) != std::string::npos) return i;
    return std::string::npos;
}

// A field's value as JSON: an integer when it reads as one (ids stay strings), else a string.
void append_field_value(std::string &out, const std::string &key, const std::string &value) {
    bool names_id = key == "id" || (key.size() > 3 && key.compare(key.size() - 3, 3, "_id") == 0);
    size_t digits = value.size() - (!value.empty() && value[0] == '-');
    if (!names_id && digits > 0 && digits <= 18 &&
        value.find_first_not_of("0123456789", value.size() - digits) == std::string::npos) {
        char text[24];
        out.append(text, std::to_chars(text, text + sizeof text, std::stoll(value)).ptr);
        return;
    }
    sdk::append_json_string(out, value);
}

std::string level_name(spdlog::level::level_enum l) {
    switch (l) {
    case spdlog::level::trace:
        return "TRACE";
    case spdlog::level::debug:
        return "DEBUG";
    case spdlog::level::info:
        return "INFO";
    case spdlog::level::warn:
        return "WARN";
    default:
        return "ERROR";
    }
}

std::mutex pending_mutex;
std::vector<std::string> pending_warnings;

// Reports a log file that cannot be written on stderr (the console in the foreground; under
// systemd the journal), once per outage: a full disk must not turn every log line into two.
class WriteFailureReporter {
  public:
    void failed(const fs::path &file, const std::error_code &ec) {
        ++lost_;
        if (reported_) return;
        reported_ = true;
        std::string text = "vik-host: cannot write log file " + file.string() + ": " + ec.message() +
                           "; log lines are lost until writing succeeds again\n";
        std::fwrite(text.data(), 1, text.size(), stderr);
        std::fflush(stderr);
    }
    // After a failure, the first line that can be written again says how many were lost.
    size_t recovered() {
        size_t lost = lost_;
        reported_ = false;
        lost_ = 0;
        return lost;
    }
    bool failing() const { return reported_; }

  private:
    bool reported_ = false;
    size_t lost_ = 0;
};

// One JSON object per line into <dir>/<base>.YYYY-MM-DD, switching files when the UTC date
// changes. spdlog's daily sink names files differently and uses local time, hence this sink.
// Files are 0600 in a 0700 directory; messages are made valid UTF-8 (controls are escaped by the
// JSON serializer), so every line parses.
class DailyJsonSink final : public spdlog::sinks::base_sink<std::mutex> {
  public:
    DailyJsonSink(fs::path dir, std::string base) : dir_(std::move(dir)), base_(std::move(base)) {}

  protected:
    void sink_it_(const spdlog::details::log_msg &msg) override {
        std::string date = util::utc_date(msg.time);
        if (date != date_ || !file_.is_open()) {
            date_ = date;
            path_ = dir_ / (base_ + "." + date);
            std::error_code ec = util::create_private_directories(dir_);
            if (!ec) ec = file_.open(path_);
            if (ec) {
                report_.failed(path_, ec);
                return;
            }
        }
        std::string text = json_log_line(msg.time, level_name(msg.level),
                                         util::to_valid_utf8(std::string_view(msg.payload.data(), msg.payload.size())),
                                         std::string(msg.logger_name.data(), msg.logger_name.size()));
        if (report_.failing()) {
            // Try the line first: only a disk that takes it again gets the note about the gap.
            if (file_.append(text)) {
                report_.failed(path_, std::make_error_code(std::errc::no_space_on_device));
                return;
            }
            size_t lost = report_.recovered();
            (void)file_.append(
                json_log_line(msg.time, "WARN",
                              std::to_string(lost) + " log line(s) were lost while " + path_.string() + " could not be written",
                              std::string(msg.logger_name.data(), msg.logger_name.size())));
            return;
        }
        if (std::error_code ec = file_.append(text)) report_.failed(path_, ec);
    }
    void flush_() override {}

  private:
    fs::path dir_;
    std::string base_;
    std::string date_;
    fs::path path_; // the file of date_
    util::AppendFile file_;
    WriteFailureReporter report_;
};

// The console's `%v`: the message with terminal controls, line breaks and bidi overrides escaped
// and invalid bytes shown as \xNN, so agent or issue text cannot forge log lines or recolour the
// operator's terminal.
class EscapedPayload final : public spdlog::custom_flag_formatter {
  public:
    void format(const spdlog::details::log_msg &msg, const std::tm &, spdlog::memory_buf_t &dest) override {
        std::string_view payload(msg.payload.data(), msg.payload.size());
        // Printable ASCII (most lines) has nothing to escape: copied as it is, no string made.
        if (std::all_of(payload.begin(), payload.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) {
            dest.append(payload.data(), payload.data() + payload.size());
            return;
        }
        std::string text = util::escape_for_terminal(payload);
        dest.append(text.data(), text.data() + text.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<EscapedPayload>(); }
};

std::shared_ptr<spdlog::sinks::sink> console_sink() {
    auto sink = std::make_shared<spdlog::sinks::stdout_color_sink_mt>();
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<EscapedPayload>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %*");
    sink->set_formatter(std::move(formatter));
    return sink;
}

} // namespace

std::string json_log_line(std::chrono::system_clock::time_point t, const std::string &level, const std::string &message,
                          const std::string &target) {
    bool problem = level == "WARN" || level == "ERROR";
    std::string text = message, detail;
    std::vector<std::pair<std::string, std::string>> fields;
    size_t first = next_field(message, 1);
    size_t colon = message.find(": ");
    if (first != std::string::npos && colon != std::string::npos && colon + 2 < first) first = std::string::npos;
    if (first == std::string::npos) {
        if (colon != std::string::npos) {
            text = message.substr(0, colon);
            detail = message.substr(colon + 2);
        }
    } else {
        text = message.substr(0, first);
        while (!text.empty() && (text.back() == ' ' || text.back() == ':'))
            text.pop_back();
        for (size_t pos = first; pos != std::string::npos;) {
            size_t eq = field_at(message, pos);
            size_t start = eq + 1, next = next_field(message, start + 1);
            size_t sep = std::string::npos;
            for (const char *s : {": ", "; ", " ("})
                sep = std::min(sep, message.find(s, start));
            if (sep != std::string::npos && (next == std::string::npos || sep < next)) {
                fields.emplace_back(message.substr(pos, eq - pos), message.substr(start, sep - start));
                detail = message.substr(message.compare(sep, 2, " (") == 0 ? sep + 1 : sep + 2);
                break;
            }
            size_t end = next == std::string::npos ? message.size() : next - 1;
            fields.emplace_back(message.substr(pos, eq - pos), message.substr(start, end - start));
            pos = next;
        }
    }
    // A `key=` that would replace a key of the line or repeat a field is text of the value before
    // it: values can come from trackers and agents, and must not rewrite the level or message.
    std::vector<std::pair<std::string, std::string>> kept;
    for (auto &[k, v] : fields) {
        bool taken = k == "timestamp" || k == "level" || k == "message" || k == "target" || k == "error" || k == "detail" ||
                     std::any_of(kept.begin(), kept.end(), [&](const auto &f) { return f.first == k; });
        if (!taken)
            kept.emplace_back(std::move(k), std::move(v));
        else if (kept.empty())
            text += " " + k + "=" + v;
        else
            kept.back().second += " " + k + "=" + v;
    }
    // Written directly, members in this order, strings escaped as util::json_compact does
    // (sdk::append_json_string): no JSON tree per log line.
    std::string line;
    line.reserve(message.size() + target.size() + 96);
    line += "{\"timestamp\":";
    sdk::append_json_string(line, timestamp_micros(t));
    line += ",\"level\":";
    sdk::append_json_string(line, level);
    line += ",\"message\":";
    sdk::append_json_string(line, text);
    for (const auto &[k, v] : kept) {
        line += ',';
        sdk::append_json_string(line, k);
        line += ':';
        append_field_value(line, k, v);
    }
    if (!detail.empty()) {
        line += problem ? ",\"error\":" : ",\"detail\":";
        sdk::append_json_string(line, detail);
    }
    line += ",\"target\":";
    sdk::append_json_string(line, target);
    line += "}\n";
    return line;
}

void warn_after_setup(const std::string &message) {
    std::lock_guard lock(pending_mutex);
    pending_warnings.push_back(message);
}

void remove_old_logs(const fs::path &dir, int days) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return;
    std::string cutoff = util::utc_date(std::chrono::system_clock::now() - std::chrono::hours(24) * days);
    for (auto &e : fs::directory_iterator(dir, ec)) {
        std::string name = e.path().filename().string();
        for (const char *base : {"vik.log.", "vik-error.log."}) {
            if (name.rfind(base, 0) != 0) continue;
            std::string date = name.substr(std::string(base).size());
            if (date.size() == 10 && date < cutoff) fs::remove(e.path(), ec);
        }
    }
}

void setup(const LogOptions &o) {
    remove_old_logs(o.dir, o.retention_days);
    std::vector<spdlog::sink_ptr> sinks;
    auto all = std::make_shared<DailyJsonSink>(o.dir, "vik.log");
    all->set_level(o.level);
    sinks.push_back(all);
    auto errors = std::make_shared<DailyJsonSink>(o.dir, "vik-error.log");
    errors->set_level(spdlog::level::err);
    sinks.push_back(errors);
    if (o.console) {
        auto c = console_sink();
        c->set_level(o.level);
        sinks.push_back(c);
    }
    auto logger = std::make_shared<spdlog::logger>("vik", sinks.begin(), sinks.end());
    logger->set_level(std::min(o.level, spdlog::level::debug));
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
    std::vector<std::string> pending;
    {
        std::lock_guard lock(pending_mutex);
        pending.swap(pending_warnings);
    }
    for (const auto &m : pending)
        spdlog::warn("{}", m);
}

void setup_console_only(spdlog::level::level_enum level) {
    auto logger = std::make_shared<spdlog::logger>("vik", console_sink());
    logger->set_level(level);
    spdlog::set_default_logger(logger);
}

std::optional<spdlog::level::level_enum> parse_level(const std::string &name) {
    static const std::pair<const char *, spdlog::level::level_enum> levels[] = {{"trace", spdlog::level::trace},
                                                                                {"debug", spdlog::level::debug},
                                                                                {"info", spdlog::level::info},
                                                                                {"warn", spdlog::level::warn},
                                                                                {"error", spdlog::level::err}};
    for (const auto &[n, l] : levels)
        if (name == n) return l;
    return std::nullopt;
}

} // namespace vik::logging
