#include "workflow/yaml_guard.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <map>
#include <set>
#include <sstream>
#include <vector>

namespace vik::workflow {

namespace {

struct Refused {
    YAML::Mark mark;
    std::string what;
};

// Counts the nodes of the document as if every alias were replaced by a copy of its anchor.
// `seen_` runs in document order over the expanded document, so a node's expanded size is the
// difference of `seen_` between its end and its start; aliases add the recorded size of their
// anchor. Linear in the source text: nothing is expanded for real.
class ExpansionCounter final : public YAML::EventHandler {
  public:
    explicit ExpansionCounter(size_t limit) : limit_(limit) {}

    void OnDocumentStart(const YAML::Mark &) override {}
    void OnDocumentEnd() override {}
    void OnAnchor(const YAML::Mark &, const std::string &name) override { pending_name_ = name; }
    void OnNull(const YAML::Mark &, YAML::anchor_t anchor) override { leaf(anchor); }
    void OnScalar(const YAML::Mark &, const std::string &, YAML::anchor_t anchor, const std::string &) override { leaf(anchor); }

    void OnAlias(const YAML::Mark &mark, YAML::anchor_t anchor) override {
        if (open_anchors_.count(anchor))
            throw Refused{mark, "alias '*" + name(anchor) +
                                    "' refers to a node that contains it (a cycle); "
                                    "aliases may only repeat a node defined before them"};
        size_t size = sizes_.count(anchor) ? sizes_[anchor] : 1;
        seen_ += size;
        through_aliases_ += size;
        if (through_aliases_ > limit_)
            throw Refused{mark, "aliases expand to more than " + std::to_string(limit_) + " nodes (alias '*" + name(anchor) +
                                    "' adds " + std::to_string(size) + "); write the repeated values out, or nest fewer aliases"};
    }

    void OnSequenceStart(const YAML::Mark &, const std::string &, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
        open(anchor);
    }
    void OnSequenceEnd() override { close(); }
    void OnMapStart(const YAML::Mark &, const std::string &, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
        open(anchor);
    }
    void OnMapEnd() override { close(); }

  private:
    void name_anchor(YAML::anchor_t anchor) {
        if (anchor == YAML::NullAnchor) return;
        names_[anchor] = pending_name_;
        pending_name_.clear();
    }
    std::string name(YAML::anchor_t anchor) const {
        auto it = names_.find(anchor);
        return it == names_.end() ? std::to_string(anchor) : it->second;
    }
    void leaf(YAML::anchor_t anchor) {
        ++seen_;
        if (anchor != YAML::NullAnchor) {
            name_anchor(anchor);
            sizes_[anchor] = 1;
        }
    }
    void open(YAML::anchor_t anchor) {
        ++seen_;
        if (anchor != YAML::NullAnchor) {
            name_anchor(anchor);
            open_anchors_.insert(anchor);
        }
        stack_.push_back({seen_ - 1, anchor});
    }
    void close() {
        if (stack_.empty()) return;
        auto [start, anchor] = stack_.back();
        stack_.pop_back();
        if (anchor != YAML::NullAnchor) {
            open_anchors_.erase(anchor);
            sizes_[anchor] = seen_ - start;
        }
    }

    size_t limit_;
    size_t seen_ = 0, through_aliases_ = 0;
    std::vector<std::pair<size_t, YAML::anchor_t>> stack_;
    std::map<YAML::anchor_t, size_t> sizes_;
    std::set<YAML::anchor_t> open_anchors_;
    std::map<YAML::anchor_t, std::string> names_;
    std::string pending_name_;
};

} // namespace

std::optional<std::string> check_yaml_limits(const std::string &text, const std::filesystem::path &file,
                                             const YamlLimits &limits) {
    std::istringstream in(text);
    ExpansionCounter counter(limits.max_alias_nodes);
    try {
        YAML::Parser parser(in);
        parser.HandleNextDocument(counter); // YAML::Load reads the first document only
    } catch (const Refused &r) {
        return file.string() + ":" + std::to_string(r.mark.line + 1) + ":" + std::to_string(r.mark.column + 1) +
               ": invalid YAML: " + r.what;
    } catch (const YAML::Exception &) {
        return std::nullopt; // the loader reports syntax errors with its own wording
    }
    return std::nullopt;
}

} // namespace vik::workflow
