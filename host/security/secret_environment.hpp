#pragma once
// Secrets (tracker tokens) moved out of the host's process environment into host memory.
//
// Agents run as the host's user. Whatever sits in the host's environment is one `cat
// /proc/<pid>/environ` away from them unless the host is non-dumpable (process_hardening.hpp);
// withholding the secrets as well means a slip there (a host started as root and read by root,
// a kernel that ignores the flag) still shows nothing. The host keeps a private copy so trusted
// children (hooks, prompt commands, tracker pull commands) receive them exactly as before, while
// agent environments are built without them.
//
// Process-wide, like the environment it mirrors. Thread-safe; `withhold` is meant to run once,
// after the plugins have read their settings and before the loop starts (glibc's unsetenv is
// not safe against concurrent getenv).

#include <string>
#include <utility>
#include <vector>

namespace vik::security {

using EnvPairs = std::vector<std::pair<std::string, std::string>>;

// Remembers where the environment the kernel passed to main() lives, so `withhold` can also
// erase the values there (that block is what /proc/<pid>/environ shows). Call first in main().
void remember_initial_environment(char **envp);

// Moves each named variable that is set out of the process environment into host memory and
// erases its value from the initial environment block. Returns the names moved. Plugins that
// read a secret lazily with getenv() after this point no longer find it: read it in `create`.
std::vector<std::string> withhold(const std::vector<std::string> &names);

// The withheld variables, in the order they were withheld.
EnvPairs withheld();

// The process environment with the withheld variables put back: what "inherit the host's
// environment" means for trusted children.
EnvPairs full_environment();

} // namespace vik::security
