#include "security/secret_environment.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

extern char **environ;

namespace vik::security {

namespace {

struct Vault {
    std::mutex mutex;
    EnvPairs secrets;
    const char *initial_begin = nullptr; // [begin, end): the strings of main()'s envp
    const char *initial_end = nullptr;
};

Vault &vault() {
    static Vault v;
    return v;
}

// environ's entry for `name`, or nullptr.
char *find_entry(const std::string &name) {
    for (char **e = environ; e && *e; ++e)
        if (std::strncmp(*e, name.c_str(), name.size()) == 0 && (*e)[name.size()] == '=') return *e;
    return nullptr;
}

} // namespace

void remember_initial_environment(char **envp) {
    Vault &v = vault();
    std::lock_guard lock(v.mutex);
    for (char **e = envp; e && *e; ++e) {
        const char *end = *e + std::strlen(*e) + 1;
        if (!v.initial_begin || *e < v.initial_begin) v.initial_begin = *e;
        if (!v.initial_end || end > v.initial_end) v.initial_end = end;
    }
}

std::vector<std::string> withhold(const std::vector<std::string> &names) {
    Vault &v = vault();
    std::lock_guard lock(v.mutex);
    std::vector<std::string> moved;
    for (const auto &name : names) {
        if (name.empty() || name.find('=') != std::string::npos) continue;
        char *entry = find_entry(name);
        if (!entry) continue;
        char *value = entry + name.size() + 1;
        auto it = std::find_if(v.secrets.begin(), v.secrets.end(), [&](const auto &kv) { return kv.first == name; });
        if (it != v.secrets.end())
            it->second = value;
        else
            v.secrets.emplace_back(name, value);
        // The kernel's copy (what /proc/<pid>/environ reads) is plain writable memory: blank the
        // value there. Strings set later by setenv() live elsewhere and are not ours to write.
        if (v.initial_begin && entry >= v.initial_begin && entry < v.initial_end) std::memset(value, 0, std::strlen(value));
        ::unsetenv(name.c_str());
        moved.push_back(name);
    }
    return moved;
}

EnvPairs withheld() {
    Vault &v = vault();
    std::lock_guard lock(v.mutex);
    return v.secrets;
}

EnvPairs full_environment() {
    Vault &v = vault();
    std::lock_guard lock(v.mutex);
    EnvPairs env;
    for (char **e = environ; e && *e; ++e) {
        const char *eq = std::strchr(*e, '=');
        if (!eq) continue;
        std::string name(*e, static_cast<size_t>(eq - *e));
        if (std::none_of(v.secrets.begin(), v.secrets.end(), [&](const auto &kv) { return kv.first == name; }))
            env.emplace_back(std::move(name), eq + 1);
    }
    env.insert(env.end(), v.secrets.begin(), v.secrets.end());
    return env;
}

} // namespace vik::security
