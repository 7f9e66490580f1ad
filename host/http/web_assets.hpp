#pragma once
// The dashboard's files (host/http/web/), embedded into the binary at build time
// (embed_web_assets.cmake), so `vik-host run` stays one file and the page always matches the API
// it was built with.

#include <string_view>

namespace vik::http {

struct WebAsset {
    std::string_view path; // "/", "/app.js", ...
    std::string_view content_type;
    std::string_view body;
};

// nullptr when no embedded file has this path.
const WebAsset *find_web_asset(std::string_view path);

} // namespace vik::http
