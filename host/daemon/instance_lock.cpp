#include "daemon/instance_lock.hpp"

#include "util/private_files.hpp"

#include <cerrno>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace vik::daemon {

std::optional<InstanceLock> InstanceLock::try_acquire(const std::filesystem::path &file) {
    (void)util::create_private_directories(file.parent_path());
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return std::nullopt;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd);
        return std::nullopt;
    }
    return InstanceLock(fd);
}

bool InstanceLock::held_by_other(const std::filesystem::path &file) { return probe(file).value_or(false); }

std::expected<bool, int> InstanceLock::probe(const std::filesystem::path &file) {
    // Read-only is enough for flock, and works on a lock file this user may read but not write.
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == EACCES || errno == EPERM) return std::unexpected(errno);
        return false; // no lock file: nobody ever ran here
    }
    bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
    ::close(fd); // closing drops the lock we may have just taken
    return held;
}

InstanceLock::~InstanceLock() {
    if (fd_ >= 0) ::close(fd_);
}

} // namespace vik::daemon
