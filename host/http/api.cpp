#include "http/api.hpp"

#include "http/url.hpp"
#include "http/web_assets.hpp"
#include "orchestrator/operator_surface.hpp"
#include "store/leases.hpp"
#include "store/store.hpp"
#include "store/store_json.hpp"

#include <boost/json.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace vik::http {

namespace json = boost::json;
using orchestrator::Change;

namespace {

Response json_response(int status, const json::value &v, std::string route) {
    Response r;
    r.status = status;
    r.body = json::serialize(v);
    r.route = std::move(route);
    return r;
}

Response with_route(Response r, std::string route) {
    r.route = std::move(route);
    return r;
}

Response method_not_allowed(const std::string &allow, std::string route) {
    auto r = error_response(405, "method_not_allowed", "this resource answers " + allow);
    r.headers.emplace_back("Allow", allow);
    r.route = std::move(route);
    return r;
}

Response unknown_issue(const std::string &id, std::string route) {
    return with_route(error_response(404, "unknown_issue", "the host knows no issue '" + id + "'"), std::move(route));
}

// The session files of an issue as the API lists them: the index is the handle a client uses,
// so a client never names a path (only files the scheduler listed can be read).
json::array session_list(const orchestrator::IssueView &issue) {
    json::array out;
    for (size_t i = 0; i < issue.session_files.size(); ++i) {
        const auto &path = issue.session_files[i];
        struct stat st {};
        bool exists = ::stat(path.c_str(), &st) == 0;
        out.push_back(json::object{{"n", i},
                                   {"name", path.substr(path.find_last_of('/') + 1)},
                                   {"bytes", exists ? static_cast<int64_t>(st.st_size) : 0},
                                   {"exists", exists}});
    }
    return out;
}

json::object issue_json(const orchestrator::IssueView &issue) {
    auto o = orchestrator::to_json(issue);
    o["sessions"] = session_list(issue);
    return o;
}

// A page of a session file: at most `chunk` bytes from `offset`, cut back to whole lines so a
// client can parse each page on its own. Read on the loop: a page is a bounded read of a local
// file the host itself writes.
Response transcript(const std::string &path, uint64_t offset, size_t chunk, std::string route) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return with_route(
            error_response(404, "no_session_file", "the session file cannot be opened: " + std::string(std::strerror(errno))),
            std::move(route));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return with_route(error_response(404, "no_session_file", "the session file is not a regular file"), std::move(route));
    }
    uint64_t size = static_cast<uint64_t>(st.st_size);
    std::string data;
    if (offset < size) {
        data.resize(static_cast<size_t>(std::min<uint64_t>(chunk, size - offset)));
        ssize_t got = ::pread(fd, data.data(), data.size(), static_cast<off_t>(offset));
        data.resize(got > 0 ? static_cast<size_t>(got) : 0);
    }
    ::close(fd);
    // Whole lines only, unless one line is longer than a page (then the page is what there is).
    if (size_t nl = data.find_last_of('\n'); nl != std::string::npos && nl + 1 < data.size()) data.resize(nl + 1);
    Response r;
    r.content_type = "application/x-ndjson";
    r.route = std::move(route);
    r.headers.emplace_back("X-Vik-File-Size", std::to_string(size));
    r.headers.emplace_back("X-Vik-Next-Offset", std::to_string(offset + data.size()));
    r.body = std::move(data);
    return r;
}

// Offsets and indexes from the URL: digits only, no sign, no overflow.
std::optional<uint64_t> parse_index(const std::string &s) {
    if (s.empty() || s.size() > 18) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    return v;
}

bool is_reserved(const std::string &segment) {
    return segment == "state" || segment == "refresh" || segment == "events" || segment == "issues" || segment == "history" ||
           segment == "stats" || segment == "cluster";
}

} // namespace

Api::Api(orchestrator::OperatorSurface &surface, const HttpStats &stats, ApiLimits limits, StoreAccess store)
    : surface_(surface), stats_(stats), limits_(limits), store_(std::move(store)) {}

Api::~Api() { *alive_ = false; }

// Runs `query` off the loop and answers with what it returns, on the loop.
Response Api::from_store(std::string route, std::function<Response(store::Store &)> query) const {
    if (!store_.store) return with_route(error_response(404, "no_store", "this host keeps no durable store"), std::move(route));
    Response r;
    r.route = route;
    r.deferred = [store = store_, query = std::move(query), route](std::function<void(Response)> reply) {
        store.off_loop([store, query, route, reply] {
            Response answer;
            try {
                answer = query(*store.store);
            } catch (const std::exception &e) {
                answer = error_response(500, "store", std::string("the store failed: ") + e.what());
            }
            answer.route = route;
            store.on_loop([reply, answer = std::move(answer)]() mutable { reply(std::move(answer)); });
        });
    };
    return r;
}

// The scheduler's view is read on the loop; the store's per-agent totals (durable across
// restarts) come from off it when there is a store.
Response Api::metrics() const {
    auto render = [this](const std::optional<store::Stats> &stats) {
        Response r;
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = render_metrics(surface_.view(), stats_, std::chrono::system_clock::now());
        if (stats) r.body += render_store_metrics(*stats);
        r.route = "/metrics";
        return r;
    };
    if (!store_.store) return render(std::nullopt);
    Response r;
    r.route = "/metrics";
    r.deferred = [store = store_, alive = alive_, render](std::function<void(Response)> reply) {
        store.off_loop([store, alive, render, reply] {
            std::optional<store::Stats> stats;
            if (auto s = store.store->stats()) stats = std::move(*s);
            store.on_loop([alive, render, reply, stats = std::move(stats)] {
                if (*alive) reply(render(stats));
            });
        });
    };
    return r;
}

bool Api::is_public_asset(const std::string &target) {
    std::string path = target.substr(0, target.find('?'));
    return find_web_asset(path) != nullptr;
}

Response Api::handle(const Request &req) const {
    auto target = parse_target(req.target);
    if (!target) return with_route(error_response(400, "bad_target", "the request target is not a valid path"), "other");
    const auto &seg = target->segments;
    const bool get = req.method == "GET", post = req.method == "POST";

    if (const WebAsset *asset = find_web_asset(target->path)) {
        if (!get) return method_not_allowed("GET", "/");
        Response r;
        r.content_type = std::string(asset->content_type);
        r.body = std::string(asset->body);
        r.route = "/";
        // The page is built into this binary: a restart with a new build is a new page.
        r.headers.emplace_back("Cache-Control", "no-cache");
        r.headers.emplace_back("Content-Security-Policy",
                               "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'");
        r.headers.emplace_back("X-Content-Type-Options", "nosniff");
        return r;
    }

    if (seg.size() == 1 && seg[0] == "metrics") {
        if (!get) return method_not_allowed("GET", "/metrics");
        return metrics();
    }

    if (seg.size() < 3 || seg[0] != "api" || seg[1] != "v1")
        return with_route(error_response(404, "not_found", "no resource at '" + target->path + "'; the API is under /api/v1"),
                          "other");
    const std::vector<std::string> rest(seg.begin() + 2, seg.end());

    if (rest.size() == 1 && rest[0] == "state") {
        if (!get) return method_not_allowed("GET", "/api/v1/state");
        return json_response(200, orchestrator::to_json(surface_.view()), "/api/v1/state");
    }
    if (rest.size() == 1 && rest[0] == "history") {
        const std::string route = "/api/v1/history";
        if (!get) return method_not_allowed("GET", route);
        store::HistoryQuery q;
        if (auto it = target->query.find("issue"); it != target->query.end()) q.issue_id = it->second;
        if (auto it = target->query.find("limit"); it != target->query.end()) {
            auto n = parse_index(it->second);
            if (!n || *n == 0) return with_route(error_response(400, "bad_limit", "limit must be a positive number"), route);
            q.limit = static_cast<size_t>(std::min<uint64_t>(*n, limits_.max_history));
        }
        return from_store(route, [q](store::Store &s) {
            auto h = s.history(q);
            if (!h) return error_response(500, "store", h.error().message);
            json::array runs;
            for (const auto &run : *h)
                runs.push_back(store::to_json(run));
            return json_response(200, runs, "");
        });
    }
    if (rest.size() == 1 && rest[0] == "stats") {
        const std::string route = "/api/v1/stats";
        if (!get) return method_not_allowed("GET", route);
        return from_store(route, [](store::Store &s) {
            auto st = s.stats();
            if (!st) return error_response(500, "store", st.error().message);
            return json_response(200, store::to_json(*st), "");
        });
    }
    if (rest.size() == 1 && rest[0] == "cluster") {
        // Several hosts on one workflow (docs/scale-out.md): every host and lease as the
        // database has them.
        const std::string route = "/api/v1/cluster";
        if (!get) return method_not_allowed("GET", route);
        return from_store(route, [](store::Store &s) {
            store::Leases *leases = s.leases();
            if (!leases)
                return error_response(404, "not_clustered",
                                      "this host shares its workflow with no other host (a postgres store "
                                      "lets several hosts share it; docs/scale-out.md)");
            auto hosts = leases->hosts();
            if (!hosts) return error_response(500, "store", hosts.error().message);
            auto held = leases->lease_list();
            if (!held) return error_response(500, "store", held.error().message);
            return json_response(200, store::cluster_json(leases->host_id(), *hosts, *held), "");
        });
    }
    if (rest.size() == 1 && rest[0] == "refresh") {
        const std::string route = "/api/v1/refresh";
        if (!post) return method_not_allowed("POST", route);
        if (!surface_.refresh())
            return with_route(error_response(409, "not_accepting",
                                             "the host takes no intake now (it is stopping, or max_iterations is reached)"),
                              route);
        return json_response(202, json::object{{"queued", true}, {"operations", json::array{"poll", "reconcile"}}}, route);
    }
    if (rest.size() == 1 && rest[0] == "events") {
        const std::string route = "/api/v1/events";
        if (!get) return method_not_allowed("GET", route);
        std::string issue;
        if (auto it = target->query.find("issue"); it != target->query.end()) issue = it->second;
        Response r;
        r.route = route;
        r.content_type = "text/event-stream";
        r.stream = std::make_shared<EventStream>();
        auto *surface = &surface_;
        r.stream->open = [surface, issue](EventStream::Sink sink) -> EventStream::Closer {
            // The snapshot first, then every change after it: on the loop nothing can happen in
            // between, so a client that applies the changes to the snapshot misses nothing.
            sink(sse_frame("state", json::serialize(orchestrator::to_json(surface->view()))));
            if (!issue.empty())
                if (auto view = surface->issue(issue)) sink(sse_frame("issue", json::serialize(issue_json(*view))));
            uint64_t handle = surface->subscribe(
                [sink, issue](const Change &c) {
                    if (c.kind == "session_event" && c.issue_id != issue) return;
                    sink(sse_frame(c.kind, json::serialize(orchestrator::to_json(c))));
                },
                !issue.empty());
            return [surface, handle] { surface->unsubscribe(handle); };
        };
        return r;
    }

    // /api/v1/issues/{id}[/retry|/cancel|/approve|/reject|/sessions[/{n}]]
    if (rest.size() >= 2 && rest[0] == "issues") {
        const std::string &id = rest[1];
        if (rest.size() == 2) {
            const std::string route = "/api/v1/issues/{id}";
            if (!get) return method_not_allowed("GET", route);
            auto view = surface_.issue(id);
            if (!view) return unknown_issue(id, route);
            return json_response(200, issue_json(*view), route);
        }
        const std::string action = rest.size() == 3 ? rest[2] : std::string();
        if (action == "retry" || action == "cancel" || action == "approve" || action == "reject") {
            const std::string route = "/api/v1/issues/{id}/" + action;
            if (!post) return method_not_allowed("POST", route);
            if (!surface_.issue(id)) return unknown_issue(id, route);
            // A retry may carry {"message": TEXT}, the next prompt's `operator_message`; a
            // rejection {"feedback": TEXT}, the next prompt's `gate_feedback`.
            const char *text_key = action == "retry" ? "message" : action == "reject" ? "feedback" : nullptr;
            std::string text;
            if (text_key && req.body.find_first_not_of(" \t\r\n") != std::string::npos) {
                boost::system::error_code ec;
                json::value body = json::parse(req.body, ec);
                const json::value *m = !ec && body.is_object() ? body.as_object().if_contains(text_key) : nullptr;
                if (ec || !body.is_object() || (m && !m->is_string()))
                    return with_route(error_response(400, "bad_body",
                                                     "a" + std::string(action == "retry" ? " retry" : " rejection") +
                                                         "'s body is a JSON object such as {\"" + text_key + "\": \"text\"}"),
                                      route);
                if (m) text = std::string(m->as_string());
            }
            auto done = action == "retry"    ? surface_.retry(id, text)
                        : action == "cancel" ? surface_.cancel(id)
                                             : surface_.gate(id, action == "approve", text);
            if (!done) return with_route(error_response(409, "refused", done.error()), route);
            return json_response(200, json::object{{"issue_id", id}, {"action", action}, {"affected", *done}}, route);
        }
        if (rest[2] == "sessions" && rest.size() <= 4) {
            const std::string route = rest.size() == 3 ? "/api/v1/issues/{id}/sessions" : "/api/v1/issues/{id}/sessions/{n}";
            if (!get) return method_not_allowed("GET", route);
            auto view = surface_.issue(id);
            if (!view) return unknown_issue(id, route);
            if (rest.size() == 3) return json_response(200, session_list(*view), route);
            auto n = parse_index(rest[3]);
            if (!n || *n >= view->session_files.size())
                return with_route(error_response(404, "unknown_session",
                                                 "issue '" + id + "' has " + std::to_string(view->session_files.size()) +
                                                     " session files; '" + rest[3] +
                                                     "' is not one of their numbers (0 is the newest)"),
                                  route);
            uint64_t offset = 0;
            if (auto it = target->query.find("offset"); it != target->query.end()) {
                auto o = parse_index(it->second);
                if (!o) return with_route(error_response(400, "bad_offset", "offset must be a number of bytes"), route);
                offset = *o;
            }
            return transcript(view->session_files[*n], offset, limits_.transcript_chunk_bytes, route);
        }
    }

    // Symphony's alias: GET /api/v1/{issue_identifier}.
    if (rest.size() == 1 && !is_reserved(rest[0])) {
        const std::string route = "/api/v1/{id}";
        if (!get) return method_not_allowed("GET", route);
        auto view = surface_.issue(rest[0]);
        if (!view) return unknown_issue(rest[0], route);
        return json_response(200, issue_json(*view), route);
    }
    return with_route(error_response(404, "not_found", "no resource at '" + target->path + "'"), "other");
}

} // namespace vik::http
