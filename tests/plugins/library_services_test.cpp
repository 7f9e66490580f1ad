// ABI 1.2 through the real loader: a library's init runs once when it loads and its deinit once
// after its last instance; an entry laid out as ABI 1.1 did still loads; a failing init refuses
// the plugin with its message; and the host services found by id (vik.json/1, vik.host-info/1)
// as a plugin in C reads them.
#include "plugins/host_api.hpp"
#include "plugins/instances.hpp"
#include "plugins/registry.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <string>

using namespace vik;
using vik::test::test_plugin_root;

namespace {

// The host log of this test (single-threaded: the plugins log from the test's own thread).
struct HostLog {
    std::ostringstream text;
    std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
    HostLog() {
        spdlog::set_default_logger(
            std::make_shared<spdlog::logger>("library-services-test", std::make_shared<spdlog::sinks::ostream_sink_st>(text)));
    }
    ~HostLog() { spdlog::set_default_logger(previous); }
    size_t count(const std::string &needle) const {
        std::string s = text.str();
        size_t n = 0;
        for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1))
            ++n;
        return n;
    }
};

std::string text_of(const std::function<void(const vik_sink *)> &fill) {
    std::string out;
    vik_sink sink{&out, [](void *ctx, const char *data, size_t len) { static_cast<std::string *>(ctx)->append(data, len); }};
    fill(&sink);
    return out;
}

const plugins::PluginRecord *record_of(const plugins::Registry &reg, const std::string &id) {
    for (const auto &r : reg.records)
        if (r.id == id) return &r;
    return nullptr;
}

} // namespace

TEST_CASE("library lifecycle: init runs once when the library loads, deinit once after its last instance", "[plugins]") {
    HostLog log;
    std::unique_ptr<plugins::TrackerInstance> first, second;
    {
        auto reg = plugins::load_plugins({test_plugin_root() / "good"});
        REQUIRE(reg.all_loaded());
        // The library's own host context: its plugin id and the host's version, through host-info.
        CHECK(log.count("[plugin good-c] good-c init 1 (host " VIK_HOST_VERSION ", plugin good-c)") == 1);
        auto a = plugins::TrackerInstance::create(reg.find_tracker("c-fixed"), "{}");
        auto b = plugins::TrackerInstance::create(reg.find_tracker("c-fixed"), "{}");
        REQUIRE(a);
        REQUIRE(b);
        first = std::move(*a);
        second = std::move(*b);
    }
    // Two instances and the registry gone: still one init, and no deinit while instances live.
    CHECK(log.count("good-c init") == 1);
    CHECK(log.count("good-c tracker created") == 2);
    CHECK(log.count("good-c deinit") == 0);
    first.reset();
    CHECK(log.count("good-c deinit") == 0);
    REQUIRE(second->pull(1000));
    second.reset();
    CHECK(log.count("[plugin good-c] good-c deinit") == 1);
}

TEST_CASE("library lifecycle: an entry of ABI 1.1 loads without init, a failing init refuses the plugin", "[plugins]") {
    HostLog log;
    auto reg = plugins::load_plugins({test_plugin_root() / "abi"});
    auto *old = record_of(reg, "good-c-old");
    REQUIRE(old);
    CHECK(old->loaded);
    CHECK(old->error.empty());
    CHECK(log.count("good-c init") == 0); // its entry ends before init: the host never reads past it
    auto tracker = plugins::TrackerInstance::create(reg.find_tracker("c-old"), "{}");
    REQUIRE(tracker);
    auto issues = (*tracker)->pull(1000);
    REQUIRE(issues);
    CHECK(issues->find("C-1") != std::string::npos);

    auto *failing = record_of(reg, "good-c-noinit");
    REQUIRE(failing);
    CHECK_FALSE(failing->loaded);
    CHECK(failing->error == "its init failed (error): good-c: the library could not set up (a test of a failing init)");
    CHECK(reg.find_tracker("c-noinit") == nullptr);
}

TEST_CASE("host services: found by id, unknown ids answer NULL", "[plugins]") {
    auto ctx = plugins::make_host_context("svc-test");
    const vik_host_api &host = ctx->api;
    REQUIRE(VIK_HOST_HAS_SERVICES(&host));
    CHECK(host.abi_minor == 2);
    CHECK(host.get_service(host.host_ctx, "vik.no-such-service/1") == nullptr);
    CHECK(host.get_service(host.host_ctx, "vik.json/2") == nullptr);
    auto *info = static_cast<const vik_host_info_v1 *>(host.get_service(host.host_ctx, VIK_SERVICE_HOST_INFO_V1));
    REQUIRE(info);
    CHECK(info->struct_size == sizeof(vik_host_info_v1));
    CHECK(std::string(info->plugin_id) == "svc-test");
    CHECK(std::string(info->host_version) == VIK_HOST_VERSION);
    auto level = spdlog::get_level();
    spdlog::set_level(spdlog::level::info);
    CHECK_FALSE(info->log_enabled(host.host_ctx, VIK_LOG_DEBUG));
    CHECK(info->log_enabled(host.host_ctx, VIK_LOG_WARN));
    spdlog::set_level(spdlog::level::debug);
    CHECK(info->log_enabled(host.host_ctx, VIK_LOG_DEBUG));
    spdlog::set_level(level);
}

TEST_CASE("host services: vik.json/1 reads a document by JSON Pointer", "[plugins]") {
    auto ctx = plugins::make_host_context("svc-test");
    auto *js = static_cast<const vik_json_v1 *>(ctx->api.get_service(ctx->api.host_ctx, VIK_SERVICE_JSON_V1));
    REQUIRE(js);
    REQUIRE(js->struct_size == sizeof(vik_json_v1));
    std::string text = R"({"issues":[{"id":"A-1","n":7,"ok":true,"f":1.5}],"a/b":"slash","m~n":"tilde","":"empty","0":null})";
    vik_json *doc = nullptr;
    char err[200] = {0};
    vik_errbuf eb{err, sizeof err};
    REQUIRE(js->parse(text.data(), text.size(), &doc, &eb) == VIK_OK);

    int32_t type = -1;
    CHECK(js->type(doc, "", &type) == VIK_OK);
    CHECK(type == VIK_JSON_OBJECT);
    CHECK(js->type(doc, "/issues", &type) == VIK_OK);
    CHECK(type == VIK_JSON_ARRAY);
    CHECK(js->type(doc, "/0", &type) == VIK_OK);
    CHECK(type == VIK_JSON_NULL);
    CHECK(text_of([&](const vik_sink *s) { CHECK(js->get_string(doc, "/issues/0/id", s) == VIK_OK); }) == "A-1");
    CHECK(text_of([&](const vik_sink *s) { CHECK(js->get_string(doc, "/a~1b", s) == VIK_OK); }) == "slash");
    CHECK(text_of([&](const vik_sink *s) { CHECK(js->get_string(doc, "/m~0n", s) == VIK_OK); }) == "tilde");
    CHECK(text_of([&](const vik_sink *s) { CHECK(js->get_string(doc, "/", s) == VIK_OK); }) == "empty");
    int64_t n = 0;
    CHECK(js->get_int(doc, "/issues/0/n", &n) == VIK_OK);
    CHECK(n == 7);
    CHECK(js->get_int(doc, "/issues/0/f", &n) == VIK_INVALID_ARGUMENT); // a fraction is not an integer
    bool ok = false;
    CHECK(js->get_bool(doc, "/issues/0/ok", &ok) == VIK_OK);
    CHECK(ok);
    size_t size = 0;
    CHECK(js->get_size(doc, "/issues", &size) == VIK_OK);
    CHECK(size == 1);
    CHECK(js->get_size(doc, "/issues/0", &size) == VIK_OK);
    CHECK(size == 4);
    CHECK(text_of([&](const vik_sink *s) { CHECK(js->get_key(doc, "/issues/0", 1, s) == VIK_OK); }) == "n");
    CHECK(js->get_key(doc, "/issues/0", 4, nullptr) == VIK_NOT_FOUND);
    CHECK(text_of([&](const vik_sink *s) { CHECK(js->serialize(doc, "/issues/0", s) == VIK_OK); }) ==
          R"({"id":"A-1","n":7,"ok":true,"f":1.5E0})");

    // What is absent, of another type, or a malformed pointer.
    CHECK(js->get_string(doc, "/issues/1/id", nullptr) == VIK_NOT_FOUND);
    CHECK(js->get_string(doc, "/issues/01", nullptr) == VIK_NOT_FOUND); // no leading zeros in an index
    CHECK(js->get_string(doc, "/issues/0/n", nullptr) == VIK_INVALID_ARGUMENT);
    CHECK(js->type(doc, "issues", &type) == VIK_INVALID_ARGUMENT);    // a pointer starts with '/'
    CHECK(js->type(doc, "/m~2n", &type) == VIK_INVALID_ARGUMENT);     // ~ is followed by 0 or 1
    CHECK(js->type(doc, "/nope/a~2", &type) == VIK_INVALID_ARGUMENT); // malformed, whatever is missing
    CHECK(js->type(doc, "/issues/0/id/x", &type) == VIK_NOT_FOUND);   // below a string
    js->free(doc);

    // Building JSON: a string literal, escaped.
    std::string nasty = "say \"hi\"\n\\ \x01";
    CHECK(text_of([&](const vik_sink *s) { js->write_string(nasty.data(), nasty.size(), s); }) == R"("say \"hi\"\n\\ \u0001")");

    // A parse error names where.
    std::string bad = "{\n  \"a\": [1, 2,,]\n}";
    CHECK(js->parse(bad.data(), bad.size(), &doc, &eb) == VIK_INVALID_ARGUMENT);
    CHECK_THAT(std::string(err), Catch::StartsWith("not valid JSON at line 2, column 14"));
    std::string trailing = "{} x";
    CHECK(js->parse(trailing.data(), trailing.size(), &doc, &eb) == VIK_INVALID_ARGUMENT);
}

TEST_CASE("host services: a tracker in C reads its settings with vik.json/1", "[plugins]") {
    auto reg = plugins::load_plugins({test_plugin_root() / "good"});
    REQUIRE(reg.all_loaded());
    auto tracker = plugins::TrackerInstance::create(
        reg.find_tracker("c-fixed"), R"({"issues":[{"id":"J-1","title":"from settings","state":"todo","description":""}]})");
    REQUIRE(tracker);
    auto issues = (*tracker)->pull(1000);
    REQUIRE(issues);
    CHECK(*issues == R"([{"id":"J-1","title":"from settings","state":"todo","description":""}])");

    auto refused = plugins::TrackerInstance::create(reg.find_tracker("c-fixed"), R"({"issues":5})");
    REQUIRE_FALSE(refused);
    CHECK(refused.error().status == VIK_INVALID_ARGUMENT);
    CHECK_THAT(refused.error().message, Catch::Contains("good-c: setting 'issues' must be an array of issues"));
}
