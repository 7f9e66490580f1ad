#include "notify/webhook_notifier.hpp"

#include "workflow/config.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include <spdlog/spdlog.h>

#include <deque>
#include <stdexcept>

namespace vik::notify {

namespace asio = boost::asio;
namespace json = boost::json;

std::optional<Notice> notice_for(const orchestrator::Change &c) {
    auto text = [&](const char *key) -> std::string {
        auto *v = c.data.if_contains(key);
        return v && v->is_string() ? std::string(v->get_string()) : "";
    };
    if (c.kind == "blocked" || c.kind == "gate_waiting") return Notice{c.kind, c.issue_id, c.stage, c.at, text("reason")};
    if (c.kind == "session_ended") {
        std::string outcome = text("outcome");
        if (outcome == "failed" || outcome == "completed") return Notice{outcome, c.issue_id, c.stage, c.at, text("reason")};
    }
    return std::nullopt;
}

namespace {

std::string slack_escape(const std::string &s) {
    std::string out;
    for (char c : s) {
        if (c == '&')
            out += "&amp;";
        else if (c == '<')
            out += "&lt;";
        else if (c == '>')
            out += "&gt;";
        else
            out.push_back(c);
    }
    return out;
}

} // namespace

std::string payload(const Notice &n, const std::string &format, const std::string &workflow) {
    std::string text = n.issue_id + " (" + n.stage + ") " +
                       (n.event == "blocked"        ? "is blocked"
                        : n.event == "gate_waiting" ? "awaits approval"
                        : n.event == "failed"       ? "failed"
                                                    : "completed") +
                       (n.reason.empty() ? "" : ": " + n.reason);
    if (format == "slack") {
        const char *icon = n.event == "completed"      ? ":white_check_mark:"
                           : n.event == "failed"       ? ":x:"
                           : n.event == "gate_waiting" ? ":hourglass:"
                                                       : ":no_entry:";
        return json::serialize(json::object{{"text", std::string(icon) + " vik-host: " + slack_escape(text)}});
    }
    return json::serialize(json::object{{"event", n.event},
                                        {"issue_id", n.issue_id},
                                        {"stage", n.stage},
                                        {"at", n.at},
                                        {"reason", n.reason},
                                        {"workflow", workflow},
                                        {"text", "vik-host: " + text}});
}

std::expected<Url, std::string> parse_url(const std::string &url) {
    Url u;
    std::string rest;
    if (url.starts_with("https://")) {
        u.tls = true;
        rest = url.substr(8);
    } else if (url.starts_with("http://")) {
        rest = url.substr(7);
    } else {
        return std::unexpected("'" + url + "' is not an http:// or https:// URL");
    }
    size_t slash = rest.find_first_of("/?#");
    std::string authority = rest.substr(0, slash);
    u.target = slash == std::string::npos ? "/" : rest.substr(slash);
    if (u.target[0] != '/') u.target = "/" + u.target;
    if (size_t hash = u.target.find('#'); hash != std::string::npos) u.target.resize(hash);
    if (authority.find('@') != std::string::npos) return std::unexpected("a webhook URL with user information is not supported");
    if (!authority.empty() && authority[0] == '[') {
        size_t close = authority.find(']');
        if (close == std::string::npos) return std::unexpected("'" + url + "' has an unclosed IPv6 address");
        u.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size() && authority[close + 1] == ':') u.port = authority.substr(close + 2);
    } else if (size_t colon = authority.rfind(':'); colon != std::string::npos) {
        u.host = authority.substr(0, colon);
        u.port = authority.substr(colon + 1);
    } else {
        u.host = authority;
    }
    if (u.host.empty()) return std::unexpected("'" + url + "' names no host");
    if (u.port.empty()) u.port = u.tls ? "443" : "80";
    if (u.port.find_first_not_of("0123456789") != std::string::npos || u.port.size() > 5)
        return std::unexpected("'" + url + "' has an invalid port");
    return u;
}

std::expected<std::vector<WebhookTarget>, std::string> targets_from(const workflow::NotifyConfig &config, const GetEnv &getenv) {
    std::vector<WebhookTarget> out;
    for (size_t i = 0; i < config.webhooks.size(); ++i) {
        const auto &w = config.webhooks[i];
        const std::string where = "notify.webhooks." + std::to_string(i);
        WebhookTarget t;
        t.url = w.url;
        if (!w.url_env.empty()) {
            const char *v = getenv(w.url_env.c_str());
            if (!v || !*v)
                return std::unexpected(where + ".url_env names " + w.url_env +
                                       ", which is not set: export the webhook's URL in it");
            t.url = v;
        }
        if (auto u = parse_url(t.url); !u)
            return std::unexpected(where + ": " + u.error() + (w.url_env.empty() ? "" : " (from " + w.url_env + ")"));
        t.events.insert(w.events.begin(), w.events.end());
        t.format = w.format;
        out.push_back(std::move(t));
    }
    return out;
}

struct WebhookNotifier::Impl : std::enable_shared_from_this<WebhookNotifier::Impl> {
    struct Channel {
        WebhookTarget target;
        Url url;
        std::deque<std::string> queue;
        int attempt = 0;
        bool busy = false;
        std::shared_ptr<PostAttempt> in_flight;
        std::unique_ptr<asio::steady_timer> retry;
    };

    Impl(asio::io_context &io, orchestrator::OperatorSurface &surface, std::string workflow, NotifierLimits limits)
        : io(io), surface(surface), workflow(std::move(workflow)), limits(limits) {
        auto made = make_poster(io);
        if (!made) throw std::runtime_error(made.error());
        poster = std::move(*made);
    }

    asio::io_context &io;
    orchestrator::OperatorSurface &surface;
    std::string workflow;
    NotifierLimits limits;
    std::unique_ptr<Poster> poster; // the loaded module's (webhook_post.hpp)
    std::vector<Channel> channels;
    NotifierStats stats;
    uint64_t subscription = 0;
    bool stopped = false;

    void on_change(const orchestrator::Change &c) {
        auto n = notice_for(c);
        if (!n) return;
        for (size_t i = 0; i < channels.size(); ++i) {
            auto &ch = channels[i];
            if (!ch.target.events.empty() && !ch.target.events.count(n->event)) continue;
            if (ch.queue.size() >= limits.max_queue) {
                ch.queue.pop_front();
                ++stats.dropped;
                spdlog::warn("webhook {}: {} notices waiting, the oldest dropped", i, limits.max_queue);
            }
            ch.queue.push_back(payload(*n, ch.target.format, workflow));
            if (!ch.busy) send(i);
        }
    }

    void send(size_t i) {
        auto &ch = channels[i];
        if (ch.queue.empty() || stopped) {
            ch.busy = false;
            return;
        }
        ch.busy = true;
        std::weak_ptr<Impl> weak = shared_from_this();
        ch.in_flight =
            poster->post(ch.url, ch.queue.front(), limits.timeout, [weak, i](bool ok, bool permanent, std::string why) {
                if (auto self = weak.lock(); self && !self->stopped) self->attempted(i, ok, permanent, why);
            });
    }

    void attempted(size_t i, bool ok, bool permanent, const std::string &why) {
        auto &ch = channels[i];
        ch.in_flight.reset();
        if (ok) {
            ++stats.delivered;
            ch.queue.pop_front();
            ch.attempt = 0;
            return send(i);
        }
        ++stats.failed_attempts;
        ++ch.attempt;
        if (permanent || ch.attempt >= limits.max_attempts) {
            ++stats.dropped;
            spdlog::warn("webhook {} ({}): notice dropped after {} attempt(s): {}", i, ch.url.host, ch.attempt, why);
            ch.queue.pop_front();
            ch.attempt = 0;
            return send(i);
        }
        auto delay = limits.backoff_base * (1 << std::min(ch.attempt - 1, 20));
        delay = std::min(delay, limits.backoff_max);
        spdlog::info("webhook {} ({}): attempt {} failed: {}; retrying in {} ms", i, ch.url.host, ch.attempt, why, delay.count());
        ch.retry->expires_after(delay);
        std::weak_ptr<Impl> weak = shared_from_this();
        ch.retry->async_wait([weak, i](boost::system::error_code ec) {
            if (auto self = weak.lock(); self && !ec && !self->stopped) self->send(i);
        });
    }
};

WebhookNotifier::WebhookNotifier(asio::io_context &io, orchestrator::OperatorSurface &surface, std::vector<WebhookTarget> targets,
                                 std::string workflow, NotifierLimits limits)
    : impl_(std::make_shared<Impl>(io, surface, std::move(workflow), limits)) {
    for (auto &t : targets) {
        auto url = parse_url(t.url);
        if (!url) throw std::invalid_argument(url.error());
        Impl::Channel ch;
        ch.url = *url;
        ch.target = std::move(t);
        ch.retry = std::make_unique<asio::steady_timer>(io);
        impl_->channels.push_back(std::move(ch));
    }
    std::weak_ptr<Impl> weak = impl_;
    impl_->subscription = surface.subscribe(
        [weak](const orchestrator::Change &c) {
            if (auto self = weak.lock(); self && !self->stopped) self->on_change(c);
        },
        false);
}

WebhookNotifier::~WebhookNotifier() {
    impl_->stopped = true;
    impl_->surface.unsubscribe(impl_->subscription);
    for (auto &ch : impl_->channels) {
        ch.retry->cancel();
        if (ch.in_flight) ch.in_flight->cancel();
    }
}

NotifierStats WebhookNotifier::stats() const { return impl_->stats; }

} // namespace vik::notify
