#pragma once
// One vik-host per workflow: an exclusive flock on service/run.lock, held for the life of the
// process (the kernel drops it when the process dies, however it dies). The pid check of
// state.json alone could not stop two starts at the same instant.

#include <expected>
#include <filesystem>
#include <optional>

namespace vik::daemon {

class InstanceLock {
  public:
    // Tries to take the lock without waiting; nullopt when another process holds it.
    static std::optional<InstanceLock> try_acquire(const std::filesystem::path &file);
    // Whether some process holds the lock now (tests it without keeping it); false when the
    // file cannot be opened.
    static bool held_by_other(const std::filesystem::path &file);
    // The same, but an unreadable lock file (EACCES) is std::unexpected(errno) rather than "not held".
    static std::expected<bool, int> probe(const std::filesystem::path &file);
    InstanceLock(InstanceLock &&other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    InstanceLock &operator=(InstanceLock &&) = delete;
    ~InstanceLock();

  private:
    explicit InstanceLock(int fd) : fd_(fd) {}
    int fd_ = -1;
};

} // namespace vik::daemon
