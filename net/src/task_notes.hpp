#pragma once
// Progress and log lines that runtimes report for their tasks, kept so
// clients can read them with the task's status. Bounded: the tasks noted
// longest ago are forgotten first, and each keeps its latest lines only.
// Used on the gateway's I/O thread only.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/json/object.hpp>

namespace drover::net {

class task_notes {
 public:
  static constexpr std::size_t lines_per_task = 100;

  explicit task_notes(std::size_t tasks_max) : tasks_max_(tasks_max > 0 ? tasks_max : 1) {}

  void progress(std::uint64_t task, double fraction, std::string note) {
    auto& n = entry(task);
    n.fraction = fraction;
    n.note = std::move(note);
  }
  void log(std::uint64_t task, std::string line) {
    auto& n = entry(task);
    n.lines.push_back(std::move(line));
    if (n.lines.size() > lines_per_task) n.lines.pop_front();
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
  struct note {
    std::optional<double> fraction;
    std::string note;
    std::deque<std::string> lines;
  };
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
};

}  // namespace drover::net
