#pragma once
// Every template of the workflow compiled once at load: inline prompts, prompt files, hooks and
// the pull command. A syntax error becomes the `invalid_template` diagnostic naming the file,
// line and column, so `doctor` finds it and `run` refuses it before any issue is claimed (vik
// would fail each stage at render time). Rendering is left to run time: the variables an issue
// brings (its extra fields) are unknown here.

#include "workflow/config.hpp"
#include "workflow/diagnostics.hpp"

namespace vik::workflow {

void check_templates(const Config &config, Diagnostics &diagnostics);

} // namespace vik::workflow
