#pragma once
// Is an address literal a loopback one? Shared by doctor (workflow/loader.cpp) and the HTTP
// server's start-up rule (http/server_config.cpp), so both say the same.

#include <boost/asio/ip/address.hpp>

#include <string>

namespace vik::util {

// 127.0.0.0/8, ::1, IPv4-mapped loopback (::ffff:127.0.0.1) and the name "localhost"; anything
// else, names included, is not (a name may resolve anywhere).
inline bool is_loopback_address(const std::string &host) {
    if (host == "localhost") return true;
    boost::system::error_code ec;
    auto a = boost::asio::ip::make_address(host, ec);
    if (ec) return false;
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()).is_loopback();
    return a.is_loopback();
}

} // namespace vik::util
