// The ABI from C++'s view: same header, same frozen layout as the C11 check.
#include <vik/plugin.h>
#include <vik/plugin.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <string>

#define VIK_SIZE(T, N) static_assert(sizeof(T) == (N), "size of " #T " changed");
#define VIK_FIELD(T, F, N) static_assert(offsetof(T, F) == (N), "offset of " #T "." #F " changed");
#include "sdk/abi_layout.inc"
#undef VIK_SIZE
#undef VIK_FIELD

TEST_CASE("sdk: every ABI struct keeps its frozen size and field offsets", "[sdk]") {
    size_t checked = 0;
#define VIK_SIZE(T, N)                                                                                                           \
    CHECK(sizeof(T) == (N));                                                                                                     \
    ++checked;
#define VIK_FIELD(T, F, N)                                                                                                       \
    CHECK(offsetof(T, F) == (N));                                                                                                \
    ++checked;
#include "sdk/abi_layout.inc"
    CHECK(checked == 94);
    CHECK(VIK_ABI_MAJOR == 1);
}

TEST_CASE("sdk: guarded turns exceptions into status and message", "[sdk]") {
    char buf[64];
    vik_errbuf err{buf, sizeof buf};
    CHECK(vik::sdk::guarded(&err, [] { return VIK_OK; }) == VIK_OK);
    CHECK(vik::sdk::guarded(&err, []() -> vik_status { throw vik::sdk::Error("bad setting", VIK_INVALID_ARGUMENT); }) ==
          VIK_INVALID_ARGUMENT);
    CHECK(std::string(buf) == "bad setting");
    CHECK(vik::sdk::guarded(&err, []() -> vik_status { throw std::runtime_error("boom"); }) == VIK_ERROR);
    CHECK(std::string(buf) == "boom");
    CHECK(vik::sdk::guarded(&err, []() -> vik_status { throw 42; }) == VIK_ERROR);
    CHECK(std::string(buf) == "unknown exception in plugin");
}

TEST_CASE("sdk: error messages are truncated to the caller's buffer and stay terminated", "[sdk]") {
    char buf[8];
    vik_errbuf err{buf, sizeof buf};
    vik::sdk::set_error(&err, "a very long message");
    CHECK(std::string(buf) == "a very ");
    vik::sdk::set_error(nullptr, "ignored"); // no buffer: no crash
}
