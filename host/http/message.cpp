#include "http/message.hpp"

#include <boost/json.hpp>

namespace vik::http {

Response error_response(int status, const std::string &code, const std::string &message) {
    Response r;
    r.status = status;
    r.body = boost::json::serialize(boost::json::object{{"error", boost::json::object{{"code", code}, {"message", message}}}});
    return r;
}

std::string sse_frame(const std::string &event, const std::string &data, uint64_t id) {
    std::string out;
    out.reserve(event.size() + data.size() + 32);
    if (id) out += "id: " + std::to_string(id) + "\n";
    out += "event: " + event + "\n";
    // A line break inside the data would end the field; the format wants one `data:` per line.
    size_t start = 0;
    while (true) {
        size_t nl = data.find('\n', start);
        out += "data: ";
        out.append(data, start, nl == std::string::npos ? std::string::npos : nl - start);
        out += "\n";
        if (nl == std::string::npos) break;
        start = nl + 1;
    }
    out += "\n";
    return out;
}

} // namespace vik::http
