#include "store/libpq_api.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

namespace vik::store {

namespace {
Libpq loaded;
void *library = nullptr; // kept for the life of the process (and reachable: not a leak)
std::string load_error;
bool load_ok = false;
std::once_flag load_once;

void load() {
    // Debian's libpq5 package; the soname has been 5 since PostgreSQL 8.
    constexpr const char *kLibrary = "libpq.so.5";
    library = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
        const char *why = dlerror();
        load_error = std::string("cannot load ") + kLibrary + " (" + (why ? why : "unknown reason") +
                     "): the postgres store needs libpq (Debian: apt-get install libpq5)";
        return;
    }
    std::string missing;
#define VIK_LIBPQ_RESOLVE(name)                                                                                                  \
    loaded.name = reinterpret_cast<decltype(loaded.name)>(dlsym(library, #name));                                                \
    if (loaded.name == nullptr) missing += std::string(missing.empty() ? "" : ", ") + #name;
    VIK_LIBPQ_FUNCTIONS(VIK_LIBPQ_RESOLVE)
#undef VIK_LIBPQ_RESOLVE
    if (!missing.empty()) {
        load_error = std::string(kLibrary) + " lacks " + missing + ": install Debian's libpq5 (PostgreSQL 10 or newer)";
        return;
    }
    // Kept for the life of the process: stores and their connections may live until exit.
    load_ok = true;
}
} // namespace

std::expected<const Libpq *, std::string> load_libpq() {
    std::call_once(load_once, load);
    if (!load_ok) return std::unexpected(load_error);
    return &loaded;
}

const Libpq &pq() {
    // A call before a successful load is a bug in the host: stop rather than call a null pointer.
    if (!load_ok) std::abort();
    return loaded;
}

} // namespace vik::store
