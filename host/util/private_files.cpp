#include "util/private_files.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace vik::util {

namespace fs = std::filesystem;

std::error_code create_private_directories(const fs::path &dir) {
    std::error_code ec;
    if (dir.empty()) return {};
    // mkdir first: a new directory under an existing parent (a new issue's session directory)
    // is then one system call; the parents are made only when it says they are missing.
    if (::mkdir(dir.c_str(), 0700) == 0) return {};
    if (errno == ENOENT && dir.has_parent_path() && dir.parent_path() != dir) {
        if (auto e = create_private_directories(dir.parent_path())) return e;
        if (::mkdir(dir.c_str(), 0700) == 0) return {};
    }
    if (errno != EEXIST) return {errno, std::generic_category()};
    if (!fs::is_directory(dir, ec)) return ec ? ec : std::make_error_code(std::errc::not_a_directory);
    return {};
}

AppendFile::~AppendFile() { close(); }

AppendFile::AppendFile(AppendFile &&o) noexcept : fd_(o.fd_), size_(o.size_) { o.fd_ = -1; }

AppendFile &AppendFile::operator=(AppendFile &&o) noexcept {
    if (this != &o) {
        close();
        fd_ = o.fd_;
        size_ = o.size_;
        o.fd_ = -1;
    }
    return *this;
}

void AppendFile::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

std::error_code AppendFile::open(const fs::path &file) {
    close();
    fd_ = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return {errno, std::generic_category()};
    struct stat st {};
    size_ = ::fstat(fd_, &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
    return {};
}

std::error_code AppendFile::append(std::string_view line) {
    if (fd_ < 0) return std::make_error_code(std::errc::bad_file_descriptor);
    size_t done = 0;
    while (done < line.size()) {
        ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int err = n < 0 ? errno : ENOSPC;
            // Cut back a partial line so the file stays whole lines (valid JSONL).
            if (done > 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0) size_ += done;
            return {err, std::generic_category()};
        }
        done += static_cast<size_t>(n);
    }
    size_ += done;
    return {};
}

} // namespace vik::util
