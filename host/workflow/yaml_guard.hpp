#pragma once
// Limits on what a workflow file may ask the YAML loader to build, checked on the parser's event
// stream before any tree exists. YAML aliases share one node in yaml-cpp's tree, but every walk of
// that tree (type checks, copies into JSON settings) expands them: ten nested aliases of ten
// elements each ("billion laughs") turn a 700-byte file into 10^9 visits and gigabytes of
// memory. An alias that refers to the node containing it would make the walk endless.

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

namespace vik::workflow {

struct YamlLimits {
    // Nodes that aliases may add to the document once expanded (every alias counts the whole
    // subtree of its anchor). Real workflows use a handful of aliases of a few nodes each.
    size_t max_alias_nodes = 100000;
    // Bytes of workflow.yml read at all; larger files are refused before parsing.
    size_t max_file_bytes = 4 * 1024 * 1024;
};

// nullopt when `text` (the first document, as YAML::Load reads it) is within the limits;
// otherwise "<file>:<line>:<col>: invalid YAML: ..." naming the alias that crossed the limit and
// what to do. Syntax errors are left to the loader, which reports them the same way.
std::optional<std::string> check_yaml_limits(const std::string &text, const std::filesystem::path &file,
                                             const YamlLimits &limits = {});

} // namespace vik::workflow
