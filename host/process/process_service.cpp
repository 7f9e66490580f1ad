#include "process/process_service.hpp"

#include "process/containment.hpp"
#include "process/orphan_guard.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <future>
#include <list>
#include <map>
#include <mutex>
#include <sched.h>
#include <set>
#include <stdexcept>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char **environ;

namespace vik::process {

namespace {

// Every child that any ProcessService of this process has started and not reaped yet. Several
// services may share a process (tests; one per owner): a service's reaping of adopted orphans
// and its sweep of stray children must never take another service's child, or that service
// would wait forever for an exit it can no longer see.
struct TrackedChildren {
    std::mutex mutex;
    std::set<pid_t> pids;
};

TrackedChildren &tracked_children() {
    static TrackedChildren t;
    return t;
}

// The open-file limit the host was started with, when raise_open_file_limit changed it.
std::mutex nofile_mutex;
std::optional<std::pair<uint64_t, uint64_t>> nofile_original;

std::optional<std::pair<uint64_t, uint64_t>> original_open_file_limit() {
    std::lock_guard lock(nofile_mutex);
    return nofile_original;
}

void untrack_child(pid_t pid) {
    std::lock_guard lock(tracked_children().mutex);
    tracked_children().pids.erase(pid);
}

} // namespace

namespace asio = boost::asio;

// One child process. Owned jointly by the service (until it is finished) and its handle.
class Child : public std::enable_shared_from_this<Child> {
  public:
    Child(ProcessService::Impl &service, asio::io_context &io) : service(service), out(io), err(io), in(io) {}

    ProcessService::Impl &service;
    pid_t pid = -1;
    uint64_t seq = 0; // the child's number: its cgroup s<seq> and its VIK_HOST_TAG
    bool spared_by_kill_all = false;
    std::string cgroup;       // empty in proc mode
    bool cgroup_idle = false; // I/O thread: its cgroup was found empty when the leader was reaped
    size_t max_line = 0;
    asio::posix::stream_descriptor out, err, in;
    std::string out_partial, err_partial;
    bool out_skipping = false, err_skipping = false; // discarding the rest of an over-long line
    bool out_open = true, err_open = true, reaped = false;
    ExitStatus status;
    std::list<std::string> stdin_queue; // a list: an empty one allocates nothing (a deque allocates ~600 bytes)
    bool stdin_writing = false, stdin_close_requested = false;
    // No read buffer of its own: a readable pipe is read into the service's one buffer
    // (Impl::read_buffer) and what is not a whole line yet waits in out_partial / err_partial.

    // Flow control: a paused stream has no read in flight and waits for the gate to open.
    std::shared_ptr<ReadGate> gate;
    bool out_paused = false, err_paused = false;
    std::atomic<bool> gate_bypass{false}; // set on release: nobody consumes any more

    // Callback delivery and release are serialized by this mutex; `released` stops delivery.
    std::recursive_mutex cb_mutex;
    ProcessCallbacks callbacks;
    bool released = false;

    // Completion, for wait().
    std::mutex done_mutex;
    std::condition_variable done_cv;
    bool done = false;

    void start_reading();
    void read_stream(bool is_out);
    void next_read(bool is_out);
    void resume_reads();
    void deliver_lines(bool is_out, const char *data, size_t n);
    void emit_line(bool is_out, std::string_view line, bool truncated);
    void on_reaped(int wstatus);
    void maybe_finish();
    void pump_stdin();
};

struct ProcessService::Impl {
    Containment containment; // first: the host is a subreaper before any child exists
    std::once_flag described;
    std::atomic<uint64_t> next_seq{0};
    std::vector<std::string> cgroups_to_remove; // I/O thread only: killed, not yet empty
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    asio::signal_set sigchld{io, SIGCHLD};
    asio::steady_timer poll{io};
    std::map<pid_t, std::shared_ptr<Child>> children; // I/O thread only
    std::mutex starting_mutex;
    std::set<pid_t> starting; // started, not yet in `children` (spawn adds, the I/O thread moves)
    mutable std::mutex count_mutex;
    size_t live = 0;
    std::thread thread;
    std::thread::id thread_id;
    // The I/O thread's one read buffer, shared by every child: a pipe is read only once it is
    // readable, straight into this, so a live child costs no buffer while it is quiet.
    std::vector<char> read_buffer = std::vector<char>(64 * 1024);

    Impl() {
        orphan_guard_set_containment(containment.cgroup_base(), containment.tag_prefix());
        std::signal(SIGPIPE, SIG_IGN);
        arm_sigchld();
        arm_poll();
        thread = std::thread([this] { io.run(); });
        thread_id = thread.get_id();
    }

    void arm_sigchld() {
        sigchld.async_wait([this](const boost::system::error_code &ec, int) {
            if (ec) return;
            reap_all();
            arm_sigchld();
        });
    }

    // SIGCHLD is coalesced and may be missed when another library installs its own handler;
    // a slow poll makes reaping robust regardless.
    void arm_poll() {
        poll.expires_after(std::chrono::milliseconds(250));
        poll.async_wait([this](const boost::system::error_code &ec) {
            if (ec) return;
            reap_all();
            retry_cgroup_removal();
            arm_poll();
        });
    }

    void reap_all() {
        if (reap_reported()) return;
        std::vector<std::shared_ptr<Child>> snapshot;
        for (auto &[pid, child] : children)
            if (!child->reaped) snapshot.push_back(child);
        for (auto &child : snapshot) {
            int wstatus = 0;
            pid_t r = waitpid(child->pid, &wstatus, WNOHANG);
            if (r == child->pid) child->on_reaped(wstatus);
        }
        // Orphans re-parented to the host (subreaper) are reaped here, or they stay zombies.
        // Under the lock spawn holds from clone to tracking: a child just started is never
        // taken for an orphan.
        std::lock_guard lock(tracked_children().mutex);
        containment.reap_adopted({tracked_children().pids.begin(), tracked_children().pids.end()});
    }

    // Reaps this service's exited children as the kernel names them: waitid with WNOWAIT tells
    // the next zombie without reaping it, so one that is not ours is left alone. True when no
    // zombie is left for this sweep (one started by this process but not listed yet is reaped
    // when it is listed); false when one is nobody's here (an adopted orphan, a child of other
    // code in the process): then the full sweep runs. The common SIGCHLD costs a system call per
    // exit, not one per live child.
    bool reap_reported() {
        for (;;) {
            siginfo_t info{};
            if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
            if (info.si_pid == 0) return true;
            auto it = children.find(info.si_pid);
            if (it == children.end() || it->second->reaped) {
                // Started by this service but not listed yet (it exited at once; its pid may be
                // that of a reaped child still draining its pipes): listing it reaps it. Anything
                // else (an adopted orphan) needs the full sweep.
                std::lock_guard lock(starting_mutex);
                return starting.count(info.si_pid) != 0;
            }
            std::shared_ptr<Child> child = it->second; // on_reaped may erase it from `children`
            int wstatus = 0;
            if (::waitpid(child->pid, &wstatus, WNOHANG) != child->pid) return false;
            child->on_reaped(wstatus);
        }
    }

    // The children of every service of this process (not only this one's): see TrackedChildren.
    std::vector<pid_t> tracked_pids() const {
        std::lock_guard lock(tracked_children().mutex);
        return {tracked_children().pids.begin(), tracked_children().pids.end()};
    }

    void retry_cgroup_removal() {
        std::erase_if(cgroups_to_remove, [](const std::string &path) { return Containment::remove_cgroup(path); });
    }

    void finished(Child &child) {
        if (child.cgroup.empty()) orphan_guard_unregister(child.pid); // registered in proc mode only
        if (!child.cgroup.empty() && !containment.release_child_cgroup(child.cgroup, child.cgroup_idle))
            cgroups_to_remove.push_back(child.cgroup);
        // Only its own entry: once reaped, its pid may already be another child's.
        if (auto it = children.find(child.pid); it != children.end() && it->second.get() == &child) children.erase(it);
        std::lock_guard lock(count_mutex);
        --live;
    }

    template <class F> auto run_on_io(F &&f) -> decltype(f()) {
        if (std::this_thread::get_id() == thread_id) return f();
        std::packaged_task<decltype(f())()> task(std::forward<F>(f));
        auto fut = task.get_future();
        asio::post(io, [&task] { task(); });
        return fut.get();
    }

    // `spare`: pass over the children spawned spared_by_kill_all (and what they started).
    void kill_everything(int signal, bool spare = false) {
        for (auto &[pid, child] : children)
            if (!child->reaped && !(spare && child->spared_by_kill_all))
                containment.signal_child(pid, child->seq, child->cgroup, signal);
        containment.signal_strays(tracked_pids(), orphan_guard_pid(), signal);
    }

    ~Impl() {
        run_on_io([this] {
            kill_everything(SIGKILL);
            return 0;
        });
        // Give the reaper a moment so children are not left as zombies of a dying service.
        for (int i = 0; i < 100; ++i) {
            {
                std::lock_guard lock(count_mutex);
                if (live == 0) break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        work.reset();
        io.stop();
        if (thread.joinable()) thread.join();
        containment.reap_adopted({});
        for (int i = 0; i < 50 && !cgroups_to_remove.empty(); ++i) {
            retry_cgroup_removal();
            if (!cgroups_to_remove.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
};

void Child::start_reading() {
    read_stream(true);
    read_stream(false);
}

void Child::read_stream(bool is_out) {
    auto self = shared_from_this();
    auto &stream = is_out ? out : err;
    stream.async_wait(asio::posix::stream_descriptor::wait_read, [self, is_out](const boost::system::error_code &wait_ec) {
        auto &s = is_out ? self->out : self->err;
        if (!s.is_open()) return;
        boost::system::error_code ec = wait_ec;
        size_t n = 0;
        if (!ec) {
            auto &buf = self->service.read_buffer;
            n = s.read_some(asio::buffer(buf), ec);
            if (ec == asio::error::would_block || ec == asio::error::try_again) { // spurious wake-up
                self->read_stream(is_out);
                return;
            }
            if (n > 0) {
                ReadBatchScope batch; // consumers are woken once for this read, not per line
                self->deliver_lines(is_out, buf.data(), n);
            }
        }
        if (ec) {
            // EOF or error: flush a final unterminated line, then mark the stream closed.
            auto &partial = is_out ? self->out_partial : self->err_partial;
            bool &skipping = is_out ? self->out_skipping : self->err_skipping;
            if (!partial.empty() && !skipping) self->emit_line(is_out, partial, false);
            partial.clear();
            partial.shrink_to_fit();
            (is_out ? self->out_open : self->err_open) = false;
            boost::system::error_code ignored;
            s.close(ignored);
            self->maybe_finish();
            return;
        }
        self->next_read(is_out);
    });
}

void Child::next_read(bool is_out) {
    if (gate && !gate_bypass) {
        std::weak_ptr<Child> weak = weak_from_this();
        bool go = gate->admit([weak] {
            if (auto c = weak.lock()) asio::post(c->service.io, [c] { c->resume_reads(); });
        });
        if (!go) {
            (is_out ? out_paused : err_paused) = true;
            return;
        }
    }
    read_stream(is_out);
}

void Child::resume_reads() {
    // Re-checks the gate: it may have shut again since it opened.
    if (out_paused) {
        out_paused = false;
        next_read(true);
    }
    if (err_paused) {
        err_paused = false;
        next_read(false);
    }
}

void Child::deliver_lines(bool is_out, const char *data, size_t n) {
    auto &partial = is_out ? out_partial : err_partial;
    bool &skipping = is_out ? out_skipping : err_skipping;
    size_t start = 0;
    while (start < n) {
        const void *nl = std::memchr(data + start, '\n', n - start);
        size_t end = nl ? static_cast<size_t>(static_cast<const char *>(nl) - data) : n;
        if (nl && !skipping && partial.empty() && end - start <= max_line) {
            // The usual case: a whole line inside this read, handed on without a copy.
            size_t len = end - start;
            if (len > 0 && data[end - 1] == '\r') --len;
            emit_line(is_out, std::string_view(data + start, len), false);
            start = end + 1;
            continue;
        }
        if (!skipping) {
            size_t room = max_line - partial.size();
            size_t take = std::min(room, end - start);
            partial.append(data + start, take);
            if (partial.size() >= max_line && (end - start) > take) {
                // Over the cap: deliver what fits, drop the rest of this line.
                emit_line(is_out, partial, true);
                partial.clear();
                skipping = true;
            }
        }
        if (nl) {
            if (!skipping) {
                if (!partial.empty() && partial.back() == '\r') partial.pop_back();
                emit_line(is_out, partial, false);
            }
            partial.clear();
            // A long line's buffer is not kept for the rest of the session.
            if (partial.capacity() > 16 * 1024) partial.shrink_to_fit();
            skipping = false;
            start = end + 1;
        } else {
            start = n;
        }
    }
}

void Child::emit_line(bool is_out, std::string_view line, bool truncated) {
    std::lock_guard lock(cb_mutex);
    if (released) return;
    auto &cb = is_out ? callbacks.on_stdout : callbacks.on_stderr;
    if (cb) cb(line, truncated);
}

void Child::on_reaped(int wstatus) {
    reaped = true;
    untrack_child(pid);
    if (WIFEXITED(wstatus)) {
        status.exit_code = WEXITSTATUS(wstatus);
    } else if (WIFSIGNALED(wstatus)) {
        status.exit_code = -1;
        status.term_signal = WTERMSIG(wstatus);
    }
    // The leader is gone: anything it left in its session goes too (escaped descendants
    // included), which also closes pipes that a background grandchild still held. A cgroup with
    // no process left needs no cgroup.kill (nothing can enter it any more), only its group's.
    if (!cgroup.empty() && Containment::cgroup_idle(cgroup)) {
        cgroup_idle = true;
        ::kill(-pid, SIGKILL);
    } else {
        service.containment.signal_child(pid, seq, cgroup, SIGKILL);
    }
    boost::system::error_code ignored;
    in.close(ignored);
    maybe_finish();
}

void Child::maybe_finish() {
    if (!reaped || out_open || err_open) return;
    {
        std::lock_guard lock(cb_mutex);
        if (!released && callbacks.on_exit) callbacks.on_exit(status);
        callbacks = {};
    }
    {
        std::lock_guard lock(done_mutex);
        done = true;
    }
    done_cv.notify_all();
    service.finished(*this);
}

void Child::pump_stdin() {
    if (stdin_writing) return;
    if (stdin_queue.empty()) {
        if (stdin_close_requested) {
            boost::system::error_code ignored;
            in.close(ignored);
        }
        return;
    }
    if (!in.is_open()) {
        stdin_queue.clear();
        return;
    }
    stdin_writing = true;
    auto self = shared_from_this();
    asio::async_write(in, asio::buffer(stdin_queue.front()), [self](const boost::system::error_code &ec, size_t) {
        self->stdin_writing = false;
        self->stdin_queue.pop_front();
        if (ec) { // the child closed its stdin or died: drop what is left
            self->stdin_queue.clear();
            boost::system::error_code ignored;
            self->in.close(ignored);
            return;
        }
        self->pump_stdin();
    });
}

// ---------------------------------------------------------------------------------------------

std::optional<std::string> find_program(const std::string &name, const std::optional<std::vector<std::string>> &env) {
    if (name.find('/') != std::string::npos) return name;
    std::string path;
    bool found_path = false;
    if (env) {
        for (const auto &kv : *env)
            if (kv.rfind("PATH=", 0) == 0) {
                path = kv.substr(5);
                found_path = true;
            }
    }
    if (!found_path) {
        const char *p = std::getenv("PATH");
        path = p ? p : "/usr/local/bin:/usr/bin:/bin";
    }
    size_t start = 0;
    while (start <= path.size()) {
        size_t end = path.find(':', start);
        if (end == std::string::npos) end = path.size();
        std::string dir = path.substr(start, end - start);
        if (dir.empty()) dir = ".";
        std::string candidate = dir + "/" + name;
        struct stat st {};
        if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
            return candidate;
        start = end + 1;
    }
    return std::nullopt;
}

uint64_t raise_open_file_limit() {
    struct rlimit lim {};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
    if (lim.rlim_cur >= lim.rlim_max) return lim.rlim_cur;
    struct rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) return lim.rlim_cur;
    std::lock_guard lock(nofile_mutex);
    if (!nofile_original) nofile_original.emplace(lim.rlim_cur, lim.rlim_max);
    return raised.rlim_cur;
}

ProcessService::ProcessService() : impl_(std::make_unique<Impl>()) {}
ProcessService::~ProcessService() = default;

size_t ProcessService::live_children() const {
    std::lock_guard lock(impl_->count_mutex);
    return impl_->live;
}

void ProcessService::kill_all(int signal) {
    impl_->run_on_io([this, signal] {
        impl_->kill_everything(signal, true);
        return 0;
    });
}

std::string ProcessService::containment_description() const { return impl_->containment.describe(); }

namespace {
struct Pipe {
    int fd[2] = {-1, -1};
    ~Pipe() {
        for (int f : fd)
            if (f >= 0) ::close(f);
    }
    int take(int i) {
        int f = fd[i];
        fd[i] = -1;
        return f;
    }
};

// Everything the new child needs, prepared by the parent. The child is started with
// clone(CLONE_VM | CLONE_VFORK): it borrows the host's memory instead of copying its page tables
// (what fork costs grows with the host), and the parent thread sleeps only until the child has
// exec'd. Until then the child may only make system calls: no allocation, no locks, no libc
// state (errno is the parent thread's, and is not relied upon by the parent).
struct ExecPlan {
    const char *program = nullptr;
    char *const *argv = nullptr;
    char *const *envp = nullptr;
    const char *cwd = nullptr; // null: the host's
    int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
    int cgroup_fd = -1;                        // cgroup.procs of the child's own cgroup; -1 in proc mode
    uint64_t nofile_soft = 0, nofile_hard = 0; // the open-file limit to restore; 0: keep
    // Written by the child when a step fails, read by the parent once the child exec'd or died.
    char failed_step = 0; // 'g' joining the cgroup, 'd' redirecting, 'c' changing directory, 'e' exec
    int failed_errno = 0;
    // ThreadSanitizer builds only (kForkForTsan): the child is forked, so the step and errno go
    // through this close-on-exec pipe instead of shared memory.
    int report_fd = -1;
};

// ThreadSanitizer cannot follow a child that shares the host's memory and the spawning thread's
// state until exec: under it, children are forked (slower, the same guarantees).
#if defined(__SANITIZE_THREAD__)
constexpr bool kForkForTsan = true;
#else
constexpr bool kForkForTsan = false;
#endif

// The kernel's own sigaction layout: the child calls the system directly, past any sanitizer
// interceptor (whose bookkeeping lives in the memory the child shares with the host).
struct KernelSigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    uint64_t mask;
};

// The child's side, on its own small stack. Never returns: it execs or exits 127. Every step is a
// raw system call: a libc wrapper may be a sanitizer's interceptor, whose bookkeeping (the fd
// table, the thread's clocks) lives in the memory the child shares with the host.
__attribute__((no_sanitize("address", "thread", "undefined"))) int exec_child(void *arg) {
    auto *plan = static_cast<ExecPlan *>(arg);
    char step = 0;
    long r = 0;
    // Into its own cgroup first, before it can start anything.
    if (plan->cgroup_fd >= 0 && ::syscall(SYS_write, plan->cgroup_fd, "0", 1) != 1) {
        step = 'g';
        goto failed;
    }
    // Own session, so the group can be killed as one and terminal signals aimed at the host do
    // not reach it unasked.
    ::syscall(SYS_setsid);
    // Every disposition back to its default (the host ignores SIGPIPE, handles SIGCHLD...), then
    // nothing blocked: the parent blocked everything around clone so no host handler runs here.
    for (int sig = 1; sig < 65; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        KernelSigaction dfl{};
        dfl.handler = SIG_DFL;
        ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof(uint64_t));
    }
    {
        uint64_t none = 0;
        ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof(uint64_t));
    }
    if (::syscall(SYS_dup2, plan->stdin_fd, 0) < 0 || ::syscall(SYS_dup2, plan->stdout_fd, 1) < 0 ||
        ::syscall(SYS_dup2, plan->stderr_fd, 2) < 0) {
        step = 'd';
        goto failed;
    }
    if (plan->report_fd >= 0) { // kForkForTsan: keep the report pipe, as fd 3, closed on exec
        ::syscall(SYS_dup2, plan->report_fd, 3);
        ::syscall(SYS_fcntl, 3, F_SETFD, FD_CLOEXEC);
        plan->report_fd = 3;
        ::syscall(SYS_close_range, 4U, ~0U, 0U);
    } else {
        ::syscall(SYS_close_range, 3U, ~0U, 0U);
    }
    // The host raised its own open-file limit (raise_open_file_limit); agents get the one the
    // host was given, as programs using select() expect.
    if (plan->nofile_soft != 0) {
        struct rlimit64 lim {};
        lim.rlim_cur = plan->nofile_soft;
        lim.rlim_max = plan->nofile_hard;
        ::syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &lim, nullptr);
    }
    if (plan->cwd != nullptr && ::syscall(SYS_chdir, plan->cwd) != 0) {
        step = 'c';
        goto failed;
    }
    r = ::syscall(SYS_execve, plan->program, plan->argv, plan->envp);
    (void)r;
    step = 'e';
failed:
    plan->failed_errno = errno;
    plan->failed_step = step;
    if (plan->report_fd >= 0) {
        ::syscall(SYS_write, plan->report_fd, &plan->failed_step, 1);
        ::syscall(SYS_write, plan->report_fd, &plan->failed_errno, sizeof plan->failed_errno);
    }
    ::syscall(SYS_exit_group, 127);
    return 127;
}

// The stack a clone child runs on until it execs: one per spawning thread, as that thread sleeps
// while its child uses it.
char *clone_stack_top() {
    constexpr size_t kSize = 64 * 1024;
    thread_local std::unique_ptr<char[]> stack;
    if (!stack) stack = std::make_unique<char[]>(kSize);
    auto top = reinterpret_cast<uintptr_t>(stack.get() + kSize) & ~uintptr_t{15};
    return reinterpret_cast<char *>(top);
}

std::string failed_step_text(char step, const std::string &cwd, const std::string &cgroup, const std::string &program) {
    switch (step) {
    case 'c':
        return "cannot enter directory '" + cwd + "'";
    case 'g':
        return "cannot join cgroup '" + cgroup + "'";
    case 'd':
        return "cannot redirect its standard streams";
    default:
        return "exec '" + program + "'";
    }
}
} // namespace

// Spawning runs on the calling thread (the loop, a worker) rather than the I/O thread, so no
// thread waits for another: the caller sleeps only from clone to the child's exec. The new child
// is then handed to the I/O thread, which reads its pipes and reaps it.
std::unique_ptr<ProcessHandle> ProcessService::spawn(const SpawnSpec &spec, ProcessCallbacks callbacks) {
    if (spec.argv.empty() || spec.argv[0].empty()) throw std::runtime_error("cannot start a process: empty command");
    // Said once, with the first child rather than at construction: the run's log opens with the
    // orchestrator's "starting vik" line.
    std::call_once(impl_->described, [this] { spdlog::info("{}", impl_->containment.describe()); });
    auto program = find_program(spec.argv[0], spec.env);
    if (!program) throw std::runtime_error("cannot start '" + spec.argv[0] + "': not found on PATH");

    std::vector<char *> argv;
    for (const auto &a : spec.argv)
        argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    // Every child carries the host's tag (replacing one inherited from an outer host): in proc
    // mode it is how escaped descendants are told apart (containment.hpp).
    const uint64_t seq = ++impl_->next_seq;
    const std::string tag = impl_->containment.tag_entry(seq);
    std::vector<std::string> env_strings;
    if (spec.env)
        env_strings = *spec.env;
    else
        for (char **e = environ; *e != nullptr; ++e)
            env_strings.emplace_back(*e);
    std::erase_if(env_strings, [](const std::string &kv) { return kv.rfind("VIK_HOST_TAG=", 0) == 0; });
    env_strings.push_back(tag);
    std::vector<char *> envp;
    for (const auto &e : env_strings)
        envp.push_back(const_cast<char *>(e.c_str()));
    envp.push_back(nullptr);
    std::shared_ptr<ReadGate> gate = spec.gate ? spec.gate : current_spawn_gate();

    auto fail = [&](const std::string &why) { return std::runtime_error("cannot start '" + spec.argv[0] + "': " + why); };
    Pipe out, err, in;
    if (pipe2(out.fd, O_CLOEXEC) || pipe2(err.fd, O_CLOEXEC) || (spec.pipe_stdin && pipe2(in.fd, O_CLOEXEC)))
        throw fail(std::string("pipe: ") + std::strerror(errno));
    std::string cgroup;
    int cgroup_fd = -1;
    bool spare_cgroup = false;
    // Set while a start is retried in a new cgroup because a spare one could not be joined.
    thread_local bool new_cgroup_only = false;
    if (impl_->containment.mode() == ContainmentMode::cgroup) {
        std::string why;
        cgroup_fd = impl_->containment.prepare_child_cgroup(seq, cgroup, why, spare_cgroup, !new_cgroup_only);
        if (cgroup_fd < 0) throw fail(why);
    }
    // One /dev/null for every child's stdin, opened once (close-on-exec; the child dup2s it); a
    // failed open is tried again by the next start.
    static std::atomic<int> shared_devnull{-1};
    int devnull = shared_devnull.load();
    if (devnull < 0 && !spec.pipe_stdin && (devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
        int none = -1;
        if (!shared_devnull.compare_exchange_strong(none, devnull)) {
            ::close(devnull);
            devnull = none;
        }
    }
    ExecPlan plan;
    plan.program = program->c_str();
    plan.argv = argv.data();
    plan.envp = envp.data();
    plan.cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
    plan.stdin_fd = spec.pipe_stdin ? in.fd[0] : devnull;
    plan.stdout_fd = out.fd[1];
    plan.stderr_fd = err.fd[1];
    plan.cgroup_fd = cgroup_fd;
    if (auto original = original_open_file_limit()) {
        plan.nofile_soft = original->first;
        plan.nofile_hard = original->second;
    }
    pid_t pid;
    int clone_errno = 0;
    Pipe report;
    {
        // Tracked before the I/O thread can see it exit: its sweep of adopted orphans runs under
        // the same lock and must not take this child for one.
        std::lock_guard tracked(tracked_children().mutex);
        // No host signal handler may run in the child, which shares the host's memory.
        sigset_t all, previous;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &previous);
        if constexpr (kForkForTsan) {
            if (pipe2(report.fd, O_CLOEXEC) == 0) plan.report_fd = report.fd[1];
            pid = ::fork();
            if (pid == 0) exec_child(&plan);
        } else {
            pid = ::clone(exec_child, clone_stack_top(), CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
        }
        clone_errno = errno;
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        if (pid > 0) tracked_children().pids.insert(pid);
    }
    if (report.fd[0] >= 0) {
        // kForkForTsan: the pipe closes on exec, or carries the failed step and errno.
        ::close(report.take(1));
        ssize_t n;
        do
            n = ::read(report.fd[0], &plan.failed_step, 1);
        while (n < 0 && errno == EINTR);
        if (n == 1 && ::read(report.fd[0], &plan.failed_errno, sizeof plan.failed_errno) != sizeof plan.failed_errno)
            plan.failed_errno = 0;
    }
    if (cgroup_fd >= 0) ::close(cgroup_fd);
    if (pid < 0) {
        if (!cgroup.empty()) Containment::remove_cgroup(cgroup);
        throw fail(std::string("clone: ") + std::strerror(clone_errno));
    }
    if (plan.failed_step != 0) {
        int ws;
        while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
        }
        untrack_child(pid);
        if (!cgroup.empty()) Containment::remove_cgroup(cgroup);
        if (plan.failed_step == 'g' && spare_cgroup && !new_cgroup_only) {
            // A spare the last session changed so that it cannot be joined (its cgroup.type,
            // say): it is gone now, and this start is made again in a new cgroup.
            struct Retry {
                Retry() { new_cgroup_only = true; }
                ~Retry() { new_cgroup_only = false; }
            } retry;
            return spawn(spec, std::move(callbacks));
        }
        throw fail(failed_step_text(plan.failed_step, spec.cwd, cgroup, *program) + ": " + std::strerror(plan.failed_errno));
    }
    // The guard kills the whole cgroup tree if the host dies; only in proc mode must it know
    // each child's group (one message per start and end saved in cgroup mode).
    if (cgroup.empty()) orphan_guard_register(pid);

    auto child = std::make_shared<Child>(*impl_, impl_->io);
    child->pid = pid;
    child->seq = seq;
    child->spared_by_kill_all = spec.spared_by_kill_all;
    child->cgroup = cgroup;
    child->gate = gate;
    child->max_line = spec.max_line_bytes == 0 ? 1024 * 1024 : spec.max_line_bytes;
    child->callbacks = std::move(callbacks);
    ::close(out.take(1));
    ::close(err.take(1));
    child->out.assign(out.take(0));
    child->err.assign(err.take(0));
    child->out.non_blocking(true);
    child->err.non_blocking(true);
    if (spec.pipe_stdin) {
        ::close(in.take(0));
        child->in.assign(in.take(1));
    }
    {
        std::lock_guard lock(impl_->count_mutex);
        ++impl_->live;
    }
    {
        std::lock_guard lock(impl_->starting_mutex);
        impl_->starting.insert(pid);
    }
    // Handed to the I/O thread without waiting for it; anything the handle asks of the child
    // later (stdin, kill) is posted after this and so finds it registered.
    asio::post(impl_->io, [child, impl = impl_.get()] {
        impl->children[child->pid] = child;
        {
            std::lock_guard lock(impl->starting_mutex);
            impl->starting.erase(child->pid);
        }
        child->start_reading();
        // It may have exited already, its SIGCHLD handled before it was listed (and children of
        // this service that exited after it may wait behind it; the full sweep is left to
        // SIGCHLD and the poll).
        impl->reap_reported();
        int wstatus = 0;
        if (!child->reaped && ::waitpid(child->pid, &wstatus, WNOHANG) == child->pid) child->on_reaped(wstatus);
    });
    return std::make_unique<ProcessHandle>(child);
}

// ---------------------------------------------------------------------------------------------

ProcessHandle::~ProcessHandle() { release(); }

int64_t ProcessHandle::pid() const { return child_ ? child_->pid : -1; }

void ProcessHandle::write_stdin(std::string data) {
    if (!child_) return;
    auto child = child_;
    asio::post(child->service.io, [child, data = std::move(data)]() mutable {
        child->stdin_queue.push_back(std::move(data));
        child->pump_stdin();
    });
}

void ProcessHandle::close_stdin() {
    if (!child_) return;
    auto child = child_;
    asio::post(child->service.io, [child] {
        child->stdin_close_requested = true;
        child->pump_stdin();
    });
}

void ProcessHandle::kill(int signal) {
    if (!child_) return;
    auto child = child_;
    // Checked on the I/O thread, where reaping happens: a reaped pid may already belong to
    // somebody else. Posted, not waited for: the caller (the loop) never waits on the I/O thread.
    asio::post(child->service.io, [child, signal] {
        if (!child->reaped) child->service.containment.signal_child(child->pid, child->seq, child->cgroup, signal);
    });
}

std::optional<ExitStatus> ProcessHandle::wait(uint32_t timeout_ms) {
    if (!child_) return std::nullopt;
    std::unique_lock lock(child_->done_mutex);
    if (!child_->done_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return child_->done; })) return std::nullopt;
    return child_->status;
}

bool ProcessHandle::exited() const {
    if (!child_) return true;
    std::lock_guard lock(child_->done_mutex);
    return child_->done;
}

void ProcessHandle::release() {
    if (!child_) return;
    if (!exited()) kill(SIGKILL);
    {
        std::lock_guard lock(child_->cb_mutex);
        child_->released = true;
    }
    // Nobody consumes any more: read to EOF whatever the gate says, so the child can finish.
    child_->gate_bypass = true;
    auto child = child_;
    asio::post(child->service.io, [child] { child->resume_reads(); });
    child_.reset();
}

} // namespace vik::process
