#pragma once
// Files and directories the host creates under a workflow's root are private to its user:
// directories 0700, files 0600 (logs and session files carry issue text, prompts, agent output
// and sometimes tokens an agent printed). Appends are whole lines or nothing, so a full disk
// never leaves half a JSON line behind.

#include <filesystem>
#include <string_view>
#include <system_error>

namespace vik::util {

// Creates `dir` and its missing parents with mode 0700; existing directories keep their mode.
std::error_code create_private_directories(const std::filesystem::path &dir);

// An append-only file opened with mode 0600 (O_APPEND, O_CLOEXEC). One writer per file.
class AppendFile {
  public:
    AppendFile() = default;
    ~AppendFile();
    AppendFile(AppendFile &&other) noexcept;
    AppendFile &operator=(AppendFile &&other) noexcept;
    AppendFile(const AppendFile &) = delete;
    AppendFile &operator=(const AppendFile &) = delete;

    // Opens (creating with 0600) `file`; the parent must exist.
    std::error_code open(const std::filesystem::path &file);
    bool is_open() const { return fd_ >= 0; }
    // Writes `line` completely or not at all: a short write (ENOSPC, EFBIG, EDQUOT) is cut back
    // with ftruncate to the size before it.
    std::error_code append(std::string_view line);
    size_t size() const { return size_; }
    void close();

  private:
    int fd_ = -1;
    size_t size_ = 0;
};

} // namespace vik::util
