// Finds and loads libvik-webhook-post.so (notify/webhook_post.hpp): lib/vik-host/ beside the
// plugins' directory, relative to the executable, in the build tree as installed.
#include "notify/webhook_post.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/dll/runtime_symbol_info.hpp>

#include <dlfcn.h>
#include <filesystem>

namespace vik::notify {

namespace {

struct Module {
    std::string path, error;
    decltype(&vik_webhook_poster_create) create = nullptr;
};

const Module &module() {
    static Module m = [] {
        Module out;
        boost::system::error_code ec;
        auto exe = boost::dll::program_location(ec);
        std::filesystem::path dir = ec ? std::filesystem::path("lib/vik-host")
                                       : std::filesystem::path(exe.parent_path().string()) / ".." / "lib" / "vik-host";
        out.path = (dir / "libvik-webhook-post.so").lexically_normal().string();
        // Kept for the life of the process: its handlers may still be queued on a loop.
        void *handle = ::dlopen(out.path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (handle == nullptr) {
            const char *why = ::dlerror();
            out.error = why ? why : "unknown error";
            return out;
        }
        out.create = reinterpret_cast<decltype(&vik_webhook_poster_create)>(::dlsym(handle, "vik_webhook_poster_create"));
        if (out.create == nullptr) out.error = "it has no vik_webhook_poster_create";
        return out;
    }();
    return m;
}

// The module's poster with each `done` taken to the loop: the module calls it on its own thread.
// A cancelled attempt's answer, already on its way, is dropped on the loop.
class LoopPoster final : public Poster {
  public:
    LoopPoster(boost::asio::io_context &io, std::unique_ptr<Poster> inner) : io_(io), inner_(std::move(inner)) {}
    ~LoopPoster() override {
        inner_.reset();  // the module's thread is joined: nothing more is posted
        *alive_ = false; // and what was posted already is dropped on the loop
    }

    std::shared_ptr<PostAttempt> post(const Url &url, std::string body, std::chrono::milliseconds timeout,
                                      PostDone done) override {
        auto attempt = std::make_shared<OnLoop>();
        // The flag, not the attempt, travels with `done`: the module's attempt holds `done`, and
        // the attempt here holds the module's.
        attempt->inner = inner_->post(url, std::move(body), timeout,
                                      [io = &io_, alive = alive_, cancelled = attempt->cancelled,
                                       done = std::move(done)](bool ok, bool permanent, std::string why) {
                                          boost::asio::post(*io, [alive, cancelled, done, ok, permanent, why = std::move(why)] {
                                              if (*alive && !*cancelled) done(ok, permanent, why);
                                          });
                                      });
        return attempt;
    }

  private:
    struct OnLoop final : PostAttempt {
        std::shared_ptr<PostAttempt> inner;
        std::shared_ptr<bool> cancelled = std::make_shared<bool>(false); // read and set on the loop
        void cancel() override {
            *cancelled = true;
            if (inner) inner->cancel();
        }
    };
    boost::asio::io_context &io_;
    std::unique_ptr<Poster> inner_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true); // read and cleared on the loop
};

} // namespace

std::expected<std::unique_ptr<Poster>, std::string> make_poster(boost::asio::io_context &io) {
    const Module &m = module();
    std::string where = "cannot load the webhook module " + m.path + ": ";
    if (!m.create) return std::unexpected(where + m.error + " (reinstall vik-host: it ships with the host)");
    std::string why;
    std::unique_ptr<Poster> inner(m.create(&why));
    if (!inner) return std::unexpected("the webhook module " + m.path + " cannot start: " + why);
    return std::make_unique<LoopPoster>(io, std::move(inner));
}

} // namespace vik::notify
