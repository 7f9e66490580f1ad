#include "http/client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace vik::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

std::expected<ClientReply, std::string> call(const std::string &address, uint16_t port, const std::string &method,
                                             const std::string &target, const std::string &token,
                                             std::chrono::milliseconds timeout) {
    const std::string where =
        (address.find(':') != std::string::npos ? "[" + address + "]" : address) + ":" + std::to_string(port);
    // An unspecified listen address (0.0.0.0, ::) is reached through loopback.
    std::string connect_to = address == "0.0.0.0" ? "127.0.0.1" : address == "::" ? "::1" : address;
    beast::error_code ec;
    auto ip = asio::ip::make_address(connect_to, ec);
    if (ec) return std::unexpected("'" + address + "' is not an IP address");
    asio::io_context io;
    beast::tcp_stream stream(io);
    beast::flat_buffer buffer;
    bhttp::request<bhttp::empty_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, where);
    req.set(bhttp::field::user_agent, "vik-host");
    if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
    req.prepare_payload();
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    std::string failure;
    bool done = false;
    // Async operations under one deadline; the io_context runs here until they end.
    stream.expires_after(timeout);
    stream.async_connect(asio::ip::tcp::endpoint(ip, port), [&](beast::error_code e) {
        if (e) {
            failure = "cannot connect to " + where + ": " + e.message();
            return;
        }
        bhttp::async_write(stream, req, [&](beast::error_code e2, size_t) {
            if (e2) {
                failure = "cannot send to " + where + ": " + e2.message();
                return;
            }
            bhttp::async_read(stream, buffer, parser, [&](beast::error_code e3, size_t) {
                if (e3)
                    failure = "no answer from " + where + ": " + e3.message();
                else
                    done = true;
            });
        });
    });
    io.run();
    if (!done) return std::unexpected(failure.empty() ? "no answer from " + where : failure);
    ClientReply r;
    r.status = static_cast<int>(parser.get().result_int());
    r.body = std::move(parser.get().body());
    return r;
}

} // namespace vik::http
