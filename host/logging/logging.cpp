#include "logging/logging.hpp"

#include "util/ids_and_time.hpp"

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

// One JSON object per line into <dir>/<base>.YYYY-MM-DD, switching files when the UTC date
// changes. spdlog's daily sink names files differently and uses local time, hence this sink.
class DailyJsonSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    DailyJsonSink(fs::path dir, std::string base) : dir_(std::move(dir)), base_(std::move(base)) {}
    ~DailyJsonSink() override {
        if (file_) std::fclose(file_);
    }

protected:
    void sink_it_(const spdlog::details::log_msg &msg) override {
        std::string date = util::utc_date(msg.time);
        if (date != date_ || file_ == nullptr) {
            if (file_) std::fclose(file_);
            date_ = date;
            std::error_code ec;
            fs::create_directories(dir_, ec);
            file_ = std::fopen((dir_ / (base_ + "." + date)).c_str(), "ae"); // "e": O_CLOEXEC, children never inherit it
        }
        if (file_ == nullptr) return;
        boost::json::object line{{"timestamp", util::rfc3339_utc(msg.time)},
                                 {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                                                       spdlog::level::to_string_view(msg.level).size())},
                                 {"message", std::string(msg.payload.data(), msg.payload.size())}};
        std::string text = boost::json::serialize(line);
        text += '\n';
        std::fwrite(text.data(), 1, text.size(), file_);
    }
    void flush_() override {
        if (file_) std::fflush(file_);
    }

private:
    fs::path dir_;
    std::string base_;
    std::string date_;
    std::FILE *file_ = nullptr;
};

std::shared_ptr<spdlog::sinks::sink> console_sink() {
    auto sink = std::make_shared<spdlog::sinks::stdout_color_sink_mt>();
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v",
                                                                     spdlog::pattern_time_type::utc));
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
