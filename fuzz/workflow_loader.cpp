// Fuzz target: workflow.yml text through the real loader (load_workflow_text, the function
// load_workflow runs on the file's bytes). Any text must load, or fail with a LoadError whose
// message starts with the file's path (vik's "<file>:<line>:<col>: ..." contract); a crash, a
// sanitizer report or any other exception is a bug.
#include "workflow/loader.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {
const char *kPath = "/fuzz/workflow.yml";
}

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
    // The loader reads VIK_HOME for the default workspace root: fixed, so runs are reproducible.
    setenv("VIK_HOME", "/fuzz/vik-home", 1);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string text(reinterpret_cast<const char *>(data), size);
    auto loaded = vik::workflow::load_workflow_text(text, kPath);
    if (!loaded && loaded.error().message.rfind(kPath, 0) != 0) {
        std::fprintf(stderr, "load error does not name the file: %s\n", loaded.error().message.c_str());
        std::abort();
    }
    return 0;
}
