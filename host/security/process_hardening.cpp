#include "security/process_hardening.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <sys/prctl.h>

namespace vik::security {

void make_non_dumpable() {
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        throw std::runtime_error(std::string("cannot mark vik-host non-dumpable (prctl PR_SET_DUMPABLE): ") +
                                 std::strerror(errno));
}

bool is_dumpable() { return ::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1; }

} // namespace vik::security
