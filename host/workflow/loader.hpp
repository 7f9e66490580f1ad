#pragma once
// workflow.yml -> Config + Diagnostics. Load-level failures (bad YAML, a missing required key, a
// wrong type, the prompt-source rule) stop loading with one message naming file:line:column;
// everything else becomes a diagnostic, as in vik.

#include "workflow/config.hpp"
#include "workflow/diagnostics.hpp"

#include <expected>
#include <filesystem>
#include <string>

namespace vik::workflow {

struct LoadError {
    std::string message; // "<file>:<line>:<col>: <pointer>: <what> ..."
    std::string pointer;
};

struct Loaded {
    Config config;
    Diagnostics diagnostics;
};

std::expected<Loaded, LoadError> load_workflow(const std::filesystem::path &path);
// For tests: parse text as if it were the file at `path`.
std::expected<Loaded, LoadError> load_workflow_text(const std::string &text, const std::filesystem::path &path);

} // namespace vik::workflow
