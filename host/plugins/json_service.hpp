#pragma once
// The host service "vik.json/1" (vik_json_v1 in vik/plugin.h): a JSON reader for plugins written
// in C, so that they need no JSON library of their own. Documents are Boost.JSON values read by
// JSON Pointer (RFC 6901).

#include <vik/plugin.h>

namespace vik::plugins {

// The service table; static, valid for the life of the process.
const vik_json_v1 *json_service();

} // namespace vik::plugins
