#include "session/session_recorder.hpp"

#include "util/ids_and_time.hpp"
#include "util/untrusted_text.hpp"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <spdlog/spdlog.h>
#include <vik/flat_json.hpp>
#include <vik/plugin.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

namespace vik::session {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {
// Buffers reused from event to event are kept up to this size; a larger one is let go.
constexpr size_t kKeptBufferBytes = 64 * 1024;
constexpr size_t kKeptBatchBytes = 16 * 1024; // a file buffer smaller than this is freed after each flush
} // namespace

SessionRecorder::SessionRecorder(fs::path file, std::string session_id, std::string issue_id, std::string stage,
                                 RecorderLimits limits)
    : file_(std::move(file)), limits_(limits) {
    std::error_code ec = util::create_private_directories(file_.parent_path());
    if (!ec) ec = out_.open(file_);
    if (ec) throw std::runtime_error("cannot open session file " + file_.string() + ": " + ec.message());
    snapshot_ = json::object{{"session_id", session_id},
                             {"issue_id", util::to_valid_utf8(issue_id)},
                             {"stage", util::to_valid_utf8(stage)},
                             {"provider_session_id", nullptr},
                             {"state", "preparing"},
                             {"started_at", util::now_rfc3339()},
                             {"last_event_at", nullptr},
                             {"last_message", nullptr},
                             {"tokens", json::object{{"input", 0}, {"output", 0}, {"cache_read", 0}}},
                             {"cost_usd", 0.0},
                             {"rate_limits", nullptr},
                             {"input_required", nullptr},
                             {"error", nullptr},
                             {"write_error", nullptr},
                             {"truncated", false},
                             {"events_not_written", 0},
                             {"file", util::to_valid_utf8(file_.string())}};
}

void SessionRecorder::set_running() { snapshot_["state"] = "running"; }

namespace {
int64_t as_int(const json::object &o, const char *k) {
    auto *v = o.if_contains(k);
    if (!v) return 0;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
    if (v->is_double()) return static_cast<int64_t>(v->get_double());
    return 0;
}
} // namespace

namespace {

// What the recorder needs from one event: the top-level kind and the few fields the snapshot
// keeps (views into the event, or into the scan that read it), and which of them have another
// type than the host reads.
struct EventFields {
    enum class Field { none, kind, session_id, text, input, output, cache_read, cost_usd };
    static Field field_of(std::string_view key) {
        using namespace std::string_view_literals; // compared length first
        return key == "kind"sv         ? Field::kind
               : key == "text"sv       ? Field::text
               : key == "session_id"sv ? Field::session_id
               : key == "input"sv      ? Field::input
               : key == "output"sv     ? Field::output
               : key == "cache_read"sv ? Field::cache_read
               : key == "cost_usd"sv   ? Field::cost_usd
                                       : Field::none;
    }
    static bool is_text(Field f) { return f == Field::kind || f == Field::session_id || f == Field::text; }

    std::string_view kind, session_id, text;
    bool has_at = false, has_kind = false, has_session_id = false, has_text = false, has_cost = false;
    int64_t input = 0, output = 0, cache_read = 0;
    double cost_usd = 0;
    unsigned mistyped_fields = 0; // a bit per Field whose top-level value has another type than the host reads

    void mistyped(Field f) {
        if (f != Field::none) mistyped_fields |= 1u << static_cast<unsigned>(f);
    }
    void set_text(Field f, std::string_view value) {
        if (f == Field::kind) kind = value, has_kind = true;
        if (f == Field::session_id) session_id = value, has_session_id = true;
        if (f == Field::text) text = value, has_text = true;
    }
    void set_number(Field f, int64_t n, double d, bool is_double) {
        if (is_text(f) || (is_double && f != Field::cost_usd && f != Field::none)) mistyped(f);
        if (f == Field::input) input = n;
        if (f == Field::output) output = n;
        if (f == Field::cache_read) cache_read = n;
        if (f == Field::cost_usd) cost_usd = is_double ? d : static_cast<double>(n), has_cost = true;
    }
    // Whether a mistyped field is one the host reads for this kind (a tool_call's `input` is the
    // tool's, any type; a token_usage's is a count).
    bool mistyped_for_kind() const {
        auto bit = [](Field f) { return 1u << static_cast<unsigned>(f); };
        unsigned read = 0;
        if (mistyped_fields == 0) return false; // nearly always: nothing to look up
        if (kind == VIK_EVENT_MESSAGE || kind == VIK_EVENT_NOTICE) read = bit(Field::text);
        if (kind == VIK_EVENT_SESSION_STARTED) read = bit(Field::session_id);
        if (kind == VIK_EVENT_TOKEN_USAGE)
            read = bit(Field::input) | bit(Field::output) | bit(Field::cache_read) | bit(Field::cost_usd);
        return (mistyped_fields & (read | bit(Field::kind))) != 0;
    }

    // From a flat reading (vik/flat_json.hpp: the event is valid JSON, one object of strings,
    // integers and objects of those, no key twice): nearly every event a runtime writes.
    void read(const vik::sdk::FlatJson &flat) {
        for (size_t i = 0; i < flat.size(); ++i) {
            const vik::sdk::FlatJson::Member &m = flat[i];
            if (m.parent >= 0) continue;
            if (m.key == std::string_view("at")) has_at = true;
            Field f = field_of(m.key);
            if (m.type == vik::sdk::FlatJson::Type::object) {
                mistyped(f);
            } else if (m.type == vik::sdk::FlatJson::Type::integer) {
                set_number(f, m.integer, 0, false);
            } else if (is_text(f)) {
                set_text(f, m.text);
            } else {
                mistyped(f);
            }
        }
    }
};

// The same, gathered by a validating scan (boost::json's SAX parser) without building a tree:
// for events a flat reading gives up on (arrays, floats, booleans, \u escapes, deeper objects).
struct EventScan {
    constexpr static std::size_t max_object_size = std::size_t(-1);
    constexpr static std::size_t max_array_size = std::size_t(-1);
    constexpr static std::size_t max_key_size = std::size_t(-1);
    constexpr static std::size_t max_string_size = std::size_t(-1);
    using Field = EventFields::Field;

    EventFields out; // its views point into the strings below
    int depth = 0;
    bool root_is_object = false;
    Field field = Field::none; // the top-level key whose value comes next
    std::string key, value;
    std::string kind, session_id, text;

    // Ready for the next event; the strings keep their buffers.
    void reset() {
        out = EventFields{};
        depth = 0;
        root_is_object = false;
        field = Field::none;
        key.clear();
        value.clear();
    }
    void mistyped() {
        if (depth == 1) out.mistyped(field);
    }

    using ec_t = boost::system::error_code;
    bool on_document_begin(ec_t &) { return true; }
    bool on_document_end(ec_t &) { return true; }
    bool enter() {
        mistyped(); // an object or array where the host reads a string or a number
        ++depth;
        field = Field::none; // a nested value is not the top-level field's
        return true;
    }
    bool on_object_begin(ec_t &) {
        if (depth == 0) root_is_object = true;
        return enter();
    }
    bool on_array_begin(ec_t &) { return enter(); }
    bool on_object_end(std::size_t, ec_t &) { return --depth, true; }
    bool on_array_end(std::size_t, ec_t &) { return --depth, true; }
    bool on_key_part(boost::json::string_view s, std::size_t, ec_t &) {
        if (depth == 1) key.append(s.data(), s.size());
        return true;
    }
    bool on_key(boost::json::string_view s, std::size_t, ec_t &) {
        if (depth != 1) return true;
        // A key in one piece (nearly all) is read where it lies.
        std::string_view k = key.empty() ? std::string_view(s.data(), s.size()) : (key.append(s.data(), s.size()), key);
        field = EventFields::field_of(k);
        if (k == std::string_view("at")) out.has_at = true;
        key.clear();
        return true;
    }
    bool on_string_part(boost::json::string_view s, std::size_t, ec_t &) {
        if (depth == 1 && field != Field::none) value.append(s.data(), s.size());
        return true;
    }
    bool on_string(boost::json::string_view s, std::size_t, ec_t &) {
        if (depth == 1 && field != Field::none) {
            if (!EventFields::is_text(field)) {
                mistyped();
            } else {
                value.append(s.data(), s.size());
                // Swapped, not moved: both strings keep a buffer for the next event. A later
                // duplicate key takes over, as in a tree.
                std::string &kept = field == Field::kind ? kind : field == Field::session_id ? session_id : text;
                kept.swap(value);
                out.set_text(field, kept);
            }
            value.clear();
        }
        field = Field::none;
        return true;
    }
    bool on_number_part(boost::json::string_view, ec_t &) { return true; }
    void number(int64_t n, double d, bool is_double) {
        if (depth == 1) out.set_number(field, n, d, is_double);
        field = Field::none;
    }
    bool on_int64(int64_t v, boost::json::string_view, ec_t &) {
        number(v, 0, false);
        return true;
    }
    bool on_uint64(uint64_t v, boost::json::string_view, ec_t &) {
        number(static_cast<int64_t>(v), 0, false);
        return true;
    }
    bool on_double(double v, boost::json::string_view, ec_t &) {
        number(static_cast<int64_t>(v), v, true);
        return true;
    }
    bool on_bool(bool, ec_t &) {
        mistyped();
        field = Field::none;
        return true;
    }
    bool on_null(ec_t &) {
        mistyped();
        field = Field::none;
        return true;
    }
    bool on_comment_part(boost::json::string_view, ec_t &) { return true; }
    bool on_comment(boost::json::string_view, ec_t &) { return true; }
};

} // namespace

namespace {

// The event vocabulary (plugin.h): every kind a runtime may emit, and the host's own `truncated`.
bool known_kind(std::string_view kind) {
    // Asked once per event: a short list compared length first (most comparisons stop there).
    static constexpr std::string_view kinds[] = {
        VIK_EVENT_MESSAGE,  VIK_EVENT_TOOL_CALL, VIK_EVENT_TOKEN_USAGE,   VIK_EVENT_SESSION_STARTED, VIK_EVENT_RATE_LIMIT,
        VIK_EVENT_SUBAGENT, VIK_EVENT_UNKNOWN,   VIK_EVENT_ERROR,         VIK_EVENT_COMPLETED,       VIK_EVENT_STDERR,
        VIK_EVENT_NOTICE,   VIK_EVENT_TRUNCATED, VIK_EVENT_INPUT_REQUIRED};
    for (std::string_view k : kinds)
        if (k == kind) return true;
    return false;
}

std::string unknown_kind(std::string_view kind) {
    return "its kind '" + util::to_valid_utf8(kind.substr(0, 80)) + "' is not in the event vocabulary (docs/runtimes.md)";
}

} // namespace

const std::string &SessionRecorder::now_text() {
    if (in_batch_ && batch_at_valid_) return at_text_;
    batch_at_valid_ = in_batch_;
    auto now = std::chrono::system_clock::now();
    int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    if (ms != at_ms_) {
        at_ms_ = ms;
        at_text_ = util::rfc3339_utc(now);
    }
    return at_text_;
}

// What an event changes in the snapshot, whichever path read it.
void SessionRecorder::apply(const SnapshotUpdate &u) {
    std::string_view kind = u.kind; // compared length first
    if (kind == VIK_EVENT_MESSAGE || kind == VIK_EVENT_TOOL_CALL || kind == VIK_EVENT_SUBAGENT || kind == VIK_EVENT_TOKEN_USAGE)
        ++work_events_;
    if (kind == VIK_EVENT_SESSION_STARTED && u.session_id) {
        snapshot_["provider_session_id"] = *u.session_id;
    } else if (kind == VIK_EVENT_MESSAGE && u.text) {
        pending_message_.assign(*u.text); // set on the next read or flush
        message_pending_ = true;
    } else if (kind == VIK_EVENT_TOKEN_USAGE) {
        auto &t = snapshot_["tokens"].as_object();
        t["input"] = as_int(t, "input") + u.input;
        t["output"] = as_int(t, "output") + u.output;
        t["cache_read"] = as_int(t, "cache_read") + u.cache_read;
        if (u.cost_usd) snapshot_["cost_usd"] = snapshot_["cost_usd"].as_double() + *u.cost_usd;
    }
}

// The fast path: false when the event needs the tree (see the header).
bool SessionRecorder::record_plain(std::string_view event_json) {
    // Read flat first (nearly every event a runtime writes), else by a validating scan. Both
    // are one per thread and reused: they keep their buffers from event to event.
    static thread_local vik::sdk::FlatJson flat;
    static thread_local boost::json::basic_parser<EventScan> parser(boost::json::parse_options{});
    const EventFields *fields = nullptr;
    EventFields flat_fields;
    // The event must stay one line in the file (the tree path writes one that spans lines anew).
    if (flat.read(event_json)) {
        if (flat.spans_lines()) return false;
        flat_fields.read(flat);
        fields = &flat_fields;
    } else {
        if (std::memchr(event_json.data(), '\n', event_json.size()) || std::memchr(event_json.data(), '\r', event_json.size()))
            return false;
        parser.reset();
        EventScan &scan = parser.handler();
        scan.reset();
        boost::system::error_code ec;
        // write_some stops after one document: anything after it ({"kind":"x"}}) is not one event.
        size_t used = parser.write_some(false, event_json.data(), event_json.size(), ec);
        if (ec || !scan.root_is_object || event_json.find_first_not_of(" \t", used) != std::string_view::npos)
            return false; // the tree path records it, and says what is wrong
        fields = &scan.out;
    }
    const EventFields &f = *fields;
    if (!f.has_kind || f.has_at || f.kind == VIK_EVENT_RATE_LIMIT || f.kind == VIK_EVENT_INPUT_REQUIRED || f.mistyped_for_kind())
        return false; // the tree path records it (and says what is wrong)
    size_t close = event_json.find_last_not_of(" \t");
    if (close == std::string::npos || event_json[close] != '}') return false;
    if (!known_kind(f.kind)) problem_ = unknown_kind(f.kind);
    SnapshotUpdate update;
    update.kind = f.kind;
    if (f.has_session_id) update.session_id = f.session_id;
    if (f.has_text) update.text = f.text;
    update.input = f.input;
    update.output = f.output;
    update.cache_read = f.cache_read;
    if (f.has_cost) update.cost_usd = f.cost_usd;
    apply(update);
    const std::string &at = now_text();
    // The event as it came, its "at" spliced in before the closing brace ("{}" has no kind, so
    // there is always a member before it). One line buffer, reused from event to event.
    std::string &line = line_;
    line.clear();
    line.append(event_json.substr(0, close));
    line.append(",\"at\":\"", 7);
    line.append(at);
    line.append("\"}\n", 3);
    ++events_;
    pending_at_ = true;
    append_line(line, at);
    if (line.capacity() > kKeptBufferBytes) std::string().swap(line); // a rare huge event's buffer is not kept
    return true;
}

void SessionRecorder::record_in_batch(std::string_view event_json) {
    struct InBatch { // reset however record() ends (a throw is caught by the supervisor's guard)
        bool &flag;
        explicit InBatch(bool &f) : flag(f) { flag = true; }
        ~InBatch() { flag = false; }
    } scope(in_batch_);
    record(event_json);
}

void SessionRecorder::record(std::string_view event_json) {
    problem_.clear();
    took_rate_limit_ = false;
    if (record_plain(event_json)) return;
    boost::system::error_code ec;
    json::parse_options opts;
    opts.allow_invalid_utf8 = true; // repaired below: an agent's broken byte must not cost the event
    json::value v = json::parse(event_json, ec, {}, opts);
    if (ec || !v.is_object() || !v.as_object().contains("kind")) {
        problem_ = ec ? "it is not JSON (" + ec.message() + ")" : "it is not a JSON object with a kind";
        append(json::object{{"kind", VIK_EVENT_UNKNOWN}, {"event_type", "invalid"}, {"raw", util::to_valid_utf8(event_json)}});
        return;
    }
    {
        const json::object &o = v.as_object();
        const json::value &k = o.at("kind");
        if (!k.is_string())
            problem_ = "its kind is not a string";
        else if (std::string_view kind(k.get_string().data(), k.get_string().size()); !known_kind(kind))
            problem_ = unknown_kind(kind);
        // The fields the host reads of this kind (others are the plugin's own business).
        std::string_view kind = k.is_string() ? std::string_view(k.get_string().data(), k.get_string().size()) : "";
        auto must_be_text = [&](const char *f) {
            if (const auto *x = o.if_contains(f); x && !x->is_string() && problem_.empty())
                problem_ = std::string("its '") + f + "' is not a string";
        };
        if (kind == VIK_EVENT_MESSAGE || kind == VIK_EVENT_NOTICE) must_be_text("text");
        if (kind == VIK_EVENT_SESSION_STARTED) must_be_text("session_id");
        if (kind == VIK_EVENT_TOKEN_USAGE) {
            for (const char *f : {"input", "output", "cache_read"})
                if (const auto *x = o.if_contains(f); x && !x->is_int64() && !x->is_uint64() && problem_.empty())
                    problem_ = std::string("its '") + f + "' is not an integer";
            if (const auto *x = o.if_contains("cost_usd"); x && !x->is_number() && problem_.empty())
                problem_ = "its 'cost_usd' is not a number";
        }
    }
    util::make_valid_utf8(v);
    json::object event = std::move(v.as_object());
    const auto *kind = event.at("kind").if_string();
    SnapshotUpdate update;
    if (kind) update.kind = std::string_view(kind->data(), kind->size());
    auto text_of = [&](const char *key) -> std::optional<std::string> {
        const auto *f = event.if_contains(key);
        if (f == nullptr) return std::nullopt;
        return f->is_string() ? std::string(f->get_string()) : json::serialize(*f);
    };
    std::optional<std::string> session_id = text_of("session_id"), text = text_of("text");
    update.session_id = session_id;
    update.text = text;
    update.input = as_int(event, "input");
    update.output = as_int(event, "output");
    update.cache_read = as_int(event, "cache_read");
    if (const auto *c = event.if_contains("cost_usd"); c && c->is_number()) update.cost_usd = c->to_number<double>();
    if (update.kind == VIK_EVENT_RATE_LIMIT) snapshot_["rate_limits"] = event, took_rate_limit_ = true;
    if (update.kind == VIK_EVENT_INPUT_REQUIRED) {
        auto question = text_of("question");
        snapshot_["input_required"] = question && !question->empty() ? *question : "the agent needs a human to go on";
    }
    apply(update);
    append(std::move(event));
}

void SessionRecorder::append(json::object event) {
    const std::string &at = now_text();
    event["at"] = at;
    snapshot_["last_event_at"] = at;
    ++events_;
    append_line(json::serialize(event) + "\n", at);
}

void SessionRecorder::append_line(std::string_view line, const std::string &at) {
    if (stopped_) {
        ++not_written_; // into the snapshot when it is read or flushed (a flood past the cap goes on)
        not_written_pending_ = true;
        return;
    }
    if (out_.size() + buffer_.size() + line.size() > limits_.max_file_bytes) {
        // One marker, then silence: the file says where it stops and why.
        stopped_ = true;
        snapshot_["truncated"] = true;
        snapshot_["events_not_written"] = static_cast<int64_t>(++not_written_);
        json::object marker{{"kind", VIK_EVENT_TRUNCATED},
                            {"detail", "session file reached its limit of " + std::to_string(limits_.max_file_bytes) +
                                           " bytes; later events are not written (token counts are still kept)"},
                            {"limit_bytes", limits_.max_file_bytes},
                            {"at", at}};
        buffer_ += json::serialize(marker);
        buffer_ += '\n';
        spdlog::warn("session file truncated session_id={} file={} limit_bytes={}",
                     std::string(snapshot_["session_id"].as_string()), file_.string(), limits_.max_file_bytes);
        flush();
        return;
    }
    buffer_.append(line);
    ++buffered_events_;
    if (buffer_.size() >= limits_.flush_bytes) flush();
}

void SessionRecorder::sync_snapshot() const {
    if (message_pending_) {
        snapshot_["last_message"] = std::string_view(pending_message_);
        message_pending_ = false;
        if (pending_message_.capacity() > kKeptBufferBytes) std::string().swap(pending_message_);
    }
    if (pending_at_) {
        snapshot_["last_event_at"] = at_text_;
        pending_at_ = false;
    }
    if (not_written_pending_) {
        snapshot_["events_not_written"] = static_cast<int64_t>(not_written_);
        not_written_pending_ = false;
    }
}

void SessionRecorder::flush() {
    batch_at_valid_ = false; // the next batch reads the clock again
    sync_snapshot();
    if (buffer_.empty()) return;
    std::error_code ec = out_.append(buffer_);
    size_t lost = ec ? buffered_events_ : 0;
    if (ec && buffered_events_ > 1) {
        // The batch did not fit (a nearly full disk): as many whole lines as still fit go in, so a
        // full disk costs the same events as with one write per event.
        std::string_view rest = buffer_;
        lost = buffered_events_;
        while (!rest.empty()) {
            size_t nl = rest.find('\n');
            std::string_view line = rest.substr(0, nl + 1);
            if ((ec = out_.append(line))) break;
            rest.remove_prefix(line.size());
            if (lost > 0) --lost;
        }
    }
    buffer_.clear();
    buffered_events_ = 0;
    if (!ec) {
        // A long burst's buffer is not kept for the rest of the session, nor a small batch's: a
        // quiet session holds no buffer between batches (memory per live session); a session
        // whose batches are large keeps one of their size.
        if (buffer_.capacity() > 4 * limits_.flush_bytes || buffer_.capacity() < kKeptBatchBytes) std::string().swap(buffer_);
        return;
    }
    bool was_truncated = snapshot_["truncated"].as_bool();
    stopped_ = true;
    not_written_ += lost;
    if (lost > 0 || !was_truncated) snapshot_["events_not_written"] = static_cast<int64_t>(not_written_);
    std::string reason = "cannot write " + file_.string() + ": " + ec.message();
    snapshot_["write_error"] = reason;
    // Once per session: a full disk would otherwise log every event.
    spdlog::error(
        "session file write failed session_id={} issue_id={}: {}; later events are not recorded (token counts still are)",
        std::string(snapshot_["session_id"].as_string()), std::string(snapshot_["issue_id"].as_string()), reason);
}

void SessionRecorder::finish(const std::string &state, const std::string &detail) {
    flush();
    snapshot_["state"] = state;
    snapshot_["finished_at"] = util::now_rfc3339();
    if (!detail.empty()) snapshot_["error"] = util::to_valid_utf8(detail);
}

} // namespace vik::session
