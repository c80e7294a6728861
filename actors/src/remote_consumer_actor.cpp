#include "drover/actors/remote_consumer_actor.hpp"

#include <cassert>

namespace drover::actors {

namespace {

void remember_queue(remote_consumer_state& st, std::uint32_t index, const std::string& name) {
  if (index >= st.queue_names.size()) st.queue_names.resize(index + 1);
  st.queue_names[index] = name;
}

void subscribe_all(remote_consumer_actor_type* self) {
  auto& st = self->state;
  if (st.config.queues.empty()) {
    st.config.sink->joined(st.config.id);
    return;
  }
  for (const auto& queue : st.config.queues) {
    self->request(st.config.broker, caf::infinite, subscribe_msg{st.config.id, queue})
        .then(
            [=](std::uint32_t index) {
              auto& s = self->state;
              remember_queue(s, index, queue);
              if (++s.subscribed == s.config.queues.size()) s.config.sink->joined(s.config.id);
            },
            [=](caf::error& err) {
              self->state.config.sink->failed(
                  core::make_error(core::errc::invalid_argument, "queue '" + queue + "' refused: " + to_string(err)));
              self->quit(err);
            });
  }
}

}  // namespace

caf::behavior remote_consumer_actor(remote_consumer_actor_type* self, remote_consumer_config config) {
  assert(config.sink);
  self->state.config = std::move(config);
  self->request(self->state.config.broker, caf::infinite,
                join_msg{self->state.config.id, caf::actor_cast<caf::actor>(self),
                         self->state.config.session_keeps_leases ? self->state.config.sink : nullptr})
      .then([=](const core::error& err) {
        if (err) {
          self->state.config.sink->failed(err);
          self->quit(caf::make_error(caf::sec::runtime_error, err.message));
          return;
        }
        subscribe_all(self);
      });
  return {
      [=](const remote_demand_msg& m) {
        if (m.n == 0) return;
        self->send(self->state.config.broker, consumer_update_msg{self->state.config.id, {}, m.n, 0});
      },
      [=](remote_reports_msg& m) {
        auto& st = self->state;
        assert(!st.config.session_keeps_leases && "such a session reports to the broker itself");
        consumer_update_msg update{st.config.id, {}, 0, 0};
        for (auto& r : m.reports) {
          auto it = st.held.find(r.lease);
          if (it == st.held.end() || it->second != r.task) {
            ++st.refused;
            st.config.sink->refused(r.task, r.lease, not_held(r.task, r.lease));
            continue;
          }
          st.held.erase(it);
          update.reports.push_back(std::move(r));
        }
        if (!update.reports.empty()) self->send(st.config.broker, std::move(update));
      },
      [=](dispatch_msg& m) {
        auto& st = self->state;
        std::vector<remote_task> tasks;
        tasks.reserve(m.items.size());
        for (auto& item : m.items) {
          if (!st.config.session_keeps_leases) st.held.emplace(item.lease, item.id);
          const std::string& queue = item.queue < st.queue_names.size() ? st.queue_names[item.queue] : std::string();
          tasks.push_back(remote_task{std::move(item), queue});
        }
        st.config.sink->deliver(std::move(tasks));
      },
      [=](const lease_cancel_msg& m) {
        auto& st = self->state;
        std::vector<core::cancel_notice> revoked;
        if (st.config.session_keeps_leases) {
          revoked = m.notices;
        } else {
          for (const auto& n : m.notices)
            if (st.held.erase(n.lease) > 0) revoked.push_back(n);
        }
        if (!revoked.empty()) st.config.sink->revoke(std::move(revoked));
      },
  };
}

}  // namespace drover::actors
