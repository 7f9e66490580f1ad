#include "logging/logging.hpp"

#include "util/ids_and_time.hpp"
#include "util/private_files.hpp"
#include "util/untrusted_text.hpp"

#include <boost/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <mutex>

namespace vik::logging {

namespace fs = std::filesystem;

namespace {

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
        fs::path path = dir_ / (base_ + "." + date);
        if (date != date_ || !file_.is_open()) {
            date_ = date;
            std::error_code ec = util::create_private_directories(dir_);
            if (!ec) ec = file_.open(path);
            if (ec) {
                report_.failed(path, ec);
                return;
            }
        }
        auto level = spdlog::level::to_string_view(msg.level);
        std::string text = line(msg.time, std::string(level.data(), level.size()),
                                util::to_valid_utf8(std::string_view(msg.payload.data(), msg.payload.size())));
        if (report_.failing()) {
            // Try the line first: only a disk that takes it again gets the note about the gap.
            if (file_.append(text)) {
                report_.failed(path, std::make_error_code(std::errc::no_space_on_device));
                return;
            }
            size_t lost = report_.recovered();
            (void)file_.append(line(msg.time, "warning", std::to_string(lost) + " log line(s) were lost while " + path.string() +
                                                            " could not be written"));
            return;
        }
        if (std::error_code ec = file_.append(text)) report_.failed(path, ec);
    }
    void flush_() override {}

private:
    static std::string line(spdlog::log_clock::time_point t, const std::string &level, const std::string &message) {
        boost::json::object o{{"timestamp", util::rfc3339_utc(t)}, {"level", level}, {"message", message}};
        return boost::json::serialize(o) + "\n";
    }
    fs::path dir_;
    std::string base_;
    std::string date_;
    util::AppendFile file_;
    WriteFailureReporter report_;
};

// The console's `%v`: the message with terminal controls, line breaks and bidi overrides escaped
// and invalid bytes shown as \xNN, so agent or issue text cannot forge log lines or recolour the
// operator's terminal.
class EscapedPayload final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg &msg, const std::tm &, spdlog::memory_buf_t &dest) override {
        std::string text = util::escape_for_terminal(std::string_view(msg.payload.data(), msg.payload.size()));
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
    all->set_level(spdlog::level::info);
    sinks.push_back(all);
    auto errors = std::make_shared<DailyJsonSink>(o.dir, "vik-error.log");
    errors->set_level(spdlog::level::err);
    sinks.push_back(errors);
    if (o.console) {
        auto c = console_sink();
        c->set_level(spdlog::level::info);
        sinks.push_back(c);
    }
    auto logger = std::make_shared<spdlog::logger>("vik", sinks.begin(), sinks.end());
    logger->set_level(spdlog::level::debug);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
}

void setup_console_only() {
    auto logger = std::make_shared<spdlog::logger>("vik", console_sink());
    spdlog::set_default_logger(logger);
}

} // namespace vik::logging
