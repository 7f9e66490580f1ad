#include "daemon/instance_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace vik::daemon {

std::optional<InstanceLock> InstanceLock::try_acquire(const std::filesystem::path &file) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return std::nullopt;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd);
        return std::nullopt;
    }
    return InstanceLock(fd);
}

bool InstanceLock::held_by_other(const std::filesystem::path &file) {
    int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return false; // no lock file: nobody ever ran here
    bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
    ::close(fd); // closing drops the lock we may have just taken
    return held;
}

InstanceLock::~InstanceLock() {
    if (fd_ >= 0) ::close(fd_);
}

} // namespace vik::daemon
