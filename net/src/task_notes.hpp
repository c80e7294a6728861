#pragma once
// Progress and log lines that runtimes report for their tasks, kept so
// clients can read them with the task's status. Bounded: the tasks noted
// longest ago are forgotten first, and each keeps its latest lines only.
// Used on the gateway's I/O thread only.
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/json/object.hpp>

namespace drover::net {

class task_notes {
 public:
  static constexpr std::size_t lines_per_task = 100;

  explicit task_notes(std::size_t tasks_max) : tasks_max_(tasks_max > 0 ? tasks_max : 1) {}

  struct note {
    std::optional<double> fraction;
    std::string note;
    std::uint64_t progress_version = 0;  // bumped by each progress report
    std::deque<std::string> lines;       // the latest lines_per_task
    std::uint64_t lines_total = 0;       // lines ever logged (the first kept is lines_total - lines.size())
  };

  void progress(std::uint64_t task, double fraction, std::string text) {
    auto& n = entry(task);
    n.fraction = fraction;
    n.note = std::move(text);
    ++n.progress_version;
    notify(task);
  }
  void log(std::uint64_t task, std::string line) {
    auto& n = entry(task);
    n.lines.push_back(std::move(line));
    ++n.lines_total;
    if (n.lines.size() > lines_per_task) n.lines.pop_front();
    notify(task);
  }
  const note* find(std::uint64_t task) const {
    auto it = notes_.find(task);
    return it == notes_.end() ? nullptr : &it->second;
  }
  /// Calls `wake` after each progress or log line of `task` until unwatched.
  std::uint64_t watch(std::uint64_t task, std::function<void()> wake) {
    watchers_.push_back({++last_watch_, task, std::move(wake)});
    return last_watch_;
  }
  void unwatch(std::uint64_t key) {
    std::erase_if(watchers_, [&](const watcher& w) { return w.key == key; });
  }
  /// Adds "progress" and "logs" to a task's description, if any were noted.
  void describe(std::uint64_t task, boost::json::object& out) const {
    auto it = notes_.find(task);
    if (it == notes_.end()) return;
    const auto& n = it->second;
    if (n.fraction) out["progress"] = boost::json::object{{"fraction", *n.fraction}, {"note", n.note}};
    if (!n.lines.empty()) {
      boost::json::array lines;
      for (const auto& l : n.lines) lines.emplace_back(l);
      out["logs"] = std::move(lines);
    }
  }

 private:
  struct watcher {
    std::uint64_t key = 0, task = 0;
    std::function<void()> wake;
  };
  void notify(std::uint64_t task) {
    for (auto& w : watchers_)
      if (w.task == task) w.wake();
  }
  note& entry(std::uint64_t task) {
    auto [it, added] = notes_.try_emplace(task);
    if (added) {
      order_.push_back(task);
      if (order_.size() > tasks_max_) {
        notes_.erase(order_.front());
        order_.pop_front();
      }
    }
    return notes_[task];  // the erase above may have rehashed
  }

  std::size_t tasks_max_;
  std::unordered_map<std::uint64_t, note> notes_;
  std::deque<std::uint64_t> order_;
  std::vector<watcher> watchers_;  // few: one per open events stream
  std::uint64_t last_watch_ = 0;
};

}  // namespace drover::net
