#pragma once
// The built-in webhook notifier: a JSON POST (vik-host's shape, or Slack's {"text": ...}) for
// every `blocked`, `failed`, `completed` and `gate_waiting` the scheduler reports, to each configured URL.
//
// It listens to the scheduler's changes (orchestrator/operator_surface.hpp) and delivers on the
// same loop, asynchronously: a slow or dead receiver never blocks scheduling. Per webhook one
// request is in flight at a time (notices arrive in order); a failed one is retried with
// exponential backoff (1 s, 2 s, 4 s, ... at most 60 s) up to `max_attempts`, a 4xx other
// than 408 and 429 is not retried; at most `max_queue` notices wait per webhook (the oldest is
// dropped beyond, with a warning). Delivery is best effort: notices still queued when the host
// exits are lost (the session files and logs keep the facts).

#include "notify/webhook_post.hpp"
#include "orchestrator/operator_surface.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}
namespace vik::workflow {
struct NotifyConfig;
}

namespace vik::notify {

struct WebhookTarget {
    std::string url;
    std::set<std::string> events; // blocked | failed | completed | gate_waiting; empty: all
    std::string format = "json";  // json | slack
};

struct NotifierLimits {
    size_t max_queue = 256;
    std::chrono::milliseconds timeout{10000}; // one delivery attempt, name resolution included
    int max_attempts = 5;
    std::chrono::milliseconds backoff_base{1000};
    std::chrono::milliseconds backoff_max{60000};
};

// What a change means to a notifier: nullopt for changes that are none of the three events.
struct Notice {
    std::string event; // blocked | failed | completed | gate_waiting
    std::string issue_id, stage, at, reason;
};
std::optional<Notice> notice_for(const orchestrator::Change &change);

// The request body for `format` ("json" or "slack"). Slack's text escapes &, < and > so issue
// text cannot become a mention (<!channel>) or a link.
std::string payload(const Notice &notice, const std::string &format, const std::string &workflow);

std::expected<Url, std::string> parse_url(const std::string &url);

using GetEnv = std::function<const char *(const char *)>;
// The targets of the workflow's `notify.webhooks`, with `url_env` read; or why the host must not
// start (a named variable that is not set, a URL that does not parse).
std::expected<std::vector<WebhookTarget>, std::string> targets_from(const workflow::NotifyConfig &config, const GetEnv &getenv);

struct NotifierStats {
    uint64_t delivered = 0;
    uint64_t failed_attempts = 0;
    uint64_t dropped = 0; // given up after max_attempts, refused for good, or pushed out of a full queue
};

class WebhookNotifier {
  public:
    // `io` and `surface` must outlive the notifier; it subscribes at once.
    WebhookNotifier(boost::asio::io_context &io, orchestrator::OperatorSurface &surface, std::vector<WebhookTarget> targets,
                    std::string workflow, NotifierLimits limits = {});
    ~WebhookNotifier();
    WebhookNotifier(const WebhookNotifier &) = delete;
    WebhookNotifier &operator=(const WebhookNotifier &) = delete;

    NotifierStats stats() const; // on the loop's thread

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

} // namespace vik::notify
