#include "drover/node.hpp"

#include <random>
#include <sys/prctl.h>
#include <shared_mutex>
#include <stdexcept>
#include <thread>
#include <unordered_set>

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "broker_link.hpp"
#include "drover/actors/admission_gate.hpp"
#include "drover/actors/broker_actor.hpp"
#include "drover/actors/hosted_scheduler.hpp"
#include "drover/actors/pool_actor.hpp"
#include "drover/actors/remote_consumer_actor.hpp"
#include "drover/actors/submission_inbox.hpp"
#include "task_cell.hpp"

namespace drover {

namespace {
constexpr auto control_timeout = std::chrono::seconds(10);  // registration, stats: control plane only

void check(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(what);
}

void validate(const node_config& c) {
  check(c.work_limit >= 1, "work_limit must be at least 1");
  check(c.max_queued_tasks >= 1, "max_queued_tasks must be at least 1");
  check(c.max_queued_bytes >= 1, "max_queued_bytes must be at least 1");
  check(c.default_max_attempts >= 1 && c.default_max_attempts <= core::attempts_max,
        "default_max_attempts must be between 1 and 1000");
  check(c.default_backoff.valid(), "default_backoff needs 0 <= initial <= max, multiplier >= 1, 0 <= jitter <= 1");
  check(c.default_timeout.count() > 0 && c.default_timeout <= core::timeout_max,
        "default_timeout must be positive and at most 2^32-1 ms");
}

core::broker_config broker_config_of(const node_config& c) {
  core::broker_config b;
  b.policy = c.balance;
  b.default_max_attempts = c.default_max_attempts;
  b.default_backoff = c.default_backoff;
  b.default_timeout = c.default_timeout;
  b.max_tasks = c.max_queued_tasks;
  b.max_bytes = c.max_queued_bytes;
  b.payload_bytes_max = c.payload_bytes_max;
  b.seed = c.seed != 0 ? c.seed : (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  return b;
}
}  // namespace

namespace detail {
class remote_handle;
}

struct node::impl {
  node_config config;
  caf::actor_system_config system_config;
  std::unique_ptr<caf::actor_system> system;
  actors::hosted_scheduler* hosted = nullptr;  // the system's scheduler when hostable_actors
  // Declared before `io`, so destroyed after it: the io_context's pending
  // operations may hold handler coroutines whose cleanup is posted to this.
  std::shared_ptr<actors::pool_context> pool_exec;
  std::optional<asio::io_context> io{std::in_place, 1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> io_work;
  std::thread io_thread;
  std::shared_ptr<actors::admission_gate> admission;
  std::shared_ptr<actors::submission_inbox> inbox;
  caf::actor broker;
  caf::actor pool;
  std::shared_ptr<detail::broker_link> link;
  std::atomic<std::uint64_t> last_task_id{0};
  std::atomic<std::uint64_t> last_consumer_id{1};  // 1 is the node's own pool
  std::mutex remotes_mutex;
  std::vector<std::weak_ptr<detail::remote_handle>> remotes;
  std::atomic<std::uint32_t> work_limit{0};
  std::atomic<bool> stopped{false};
  const std::uint64_t serial = next_serial();
  mutable std::shared_mutex queues_mutex;
  std::unordered_set<std::string> queues;

  static std::uint64_t next_serial() {
    static std::atomic<std::uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
  }

  bool knows(const std::string& queue) const {
    // A submitting thread's last known queue is remembered (queues are
    // never forgotten): a run of submits to one queue takes the lock and
    // hashes the name once, not per task. Keyed by this node's serial, as
    // a later node may live at the same address.
    thread_local std::uint64_t known_for = 0;
    thread_local std::string known;
    if (known_for == serial && known == queue) return true;
    std::shared_lock lock(queues_mutex);
    if (!queues.contains(queue)) return false;
    known_for = serial, known = queue;
    return true;
  }
  void remember(const std::string& queue) {
    std::unique_lock lock(queues_mutex);
    queues.insert(queue);
  }

  /// Checks that do not need the broker, so errors come back at once.
  core::result<void> precheck(const core::task_spec& spec) const {
    if (stopped.load(std::memory_order_acquire)) return core::make_error(errc::shutting_down, "the node is stopping");
    if (!knows(spec.queue))
      return core::make_error(errc::unknown_queue, "queue '" + spec.queue + "' has no handler and was not declared");
    return core::validate(spec, config.payload_bytes_max);
  }

  /// The checks that need no broker, then room reserved: what every single
  /// submit passes before its task goes to the inbox.
  core::result<void> accept(const core::task_spec& spec, when_full full) {
    if (auto ok = precheck(spec); !ok) return ok;
    return admit(spec.payload.size(), full);
  }

  core::result<void> admit(std::size_t bytes, when_full full) {
    if (full == when_full::wait) {
      admission->admit_waiting(bytes);
      return {};
    }
    if (admission->try_admit(bytes)) return {};
    return core::make_error(errc::queue_full, "the node holds its maximum of " + std::to_string(config.max_queued_tasks) +
                                                  " tasks or " + std::to_string(config.max_queued_bytes) + " bytes");
  }

  /// Submits once there is room; `done` runs here or, after waiting, on the
  /// broker's thread when it frees room.
  void submit_when_room(std::shared_ptr<core::task_spec> spec, when_full full,
                        std::function<void(core::result<task_handle>)> done) {
    if (auto ok = precheck(*spec); !ok) return done(ok.err());
    if (admission->try_admit(spec->payload.size())) return done(task_handle(enqueue(std::move(*spec))));
    if (full == when_full::fail)
      return done(core::make_error(errc::queue_full, "the node holds its maximum of tasks or bytes"));
    admission->on_room([this, spec, full, done] { submit_when_room(spec, full, done); });
  }

  task_id next_task_id() { return task_id{last_task_id.fetch_add(1, std::memory_order_relaxed) + 1}; }

  /// The task goes to the broker observed by a new handle's cell.
  std::shared_ptr<detail::task_cell> enqueue(core::task_spec&& spec) {
    const auto id = next_task_id();
    auto cell = std::make_shared<detail::task_cell>(id, link);
    inbox->push(id, std::move(spec), core::observer_ref(cell));
    return cell;
  }

  /// The task goes to the broker observed by `observer` (none: fire and forget).
  task_id enqueue(core::task_spec&& spec, core::observer_ref observer) {
    const auto id = next_task_id();
    inbox->push(id, std::move(spec), std::move(observer));
    return id;
  }
};

node::node(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

node::~node() { stop(); }

std::unique_ptr<node> node::start(node_config config) {
  validate(config);
  auto p = std::make_unique<impl>();
  p->config = config;
  p->work_limit = config.work_limit;
  // Default: leave one core to the embedding service's own threads (its
  // submitters); on 2 cores one scheduler thread gave more throughput and
  // less CPU than two (docs/benchmarks.md).
  const auto cores = std::max(1u, std::thread::hardware_concurrency());
  const auto threads = config.scheduler_threads ? config.scheduler_threads : std::max(1u, cores - 1);
  p->system_config.set("scheduler.max-threads", config.hostable_actors ? 1 : threads);
  if (config.hostable_actors) actors::hosted_scheduler::install(p->system_config);
  p->system_config.set("work-stealing.moderate-sleep-duration", caf::timespan{config.idle_poll_interval});
  p->system_config.set("work-stealing.aggressive-poll-attempts", config.idle_spin_polls);
  p->system_config.set("work-stealing.moderate-poll-attempts", config.idle_sleep_polls);
  // Scheduler threads inherit the timer slack of the thread that creates
  // them: create the system from a helper thread so the caller's own thread
  // keeps its setting.
  std::thread([&] {
    ::prctl(PR_SET_TIMERSLACK, static_cast<unsigned long>(config.timer_slack.count()), 0, 0, 0);
    p->system = std::make_unique<caf::actor_system>(p->system_config);
  }).join();
  p->hosted = actors::hosted_scheduler::of(*p->system);
  p->admission = std::make_shared<actors::admission_gate>(config.max_queued_tasks, config.max_queued_bytes);
  auto* raw = p.get();
  p->inbox = std::make_shared<actors::submission_inbox>([raw] { caf::anon_send(raw->broker, actors::drain_atom::value); });
  p->broker = p->system->spawn(actors::broker_actor, broker_config_of(config), p->inbox, p->admission);
  if (p->hosted) p->hosted->put_first(p->broker);
  if (config.quiet_spin_polls > 0 && !config.hostable_actors)
    caf::anon_send(p->broker, actors::spin_policy_msg{config.quiet_spin_polls, config.idle_spin_polls, config.quiet_rate});
  p->link = std::make_shared<detail::broker_link>(p->broker);
  p->pool_exec = std::make_shared<actors::pool_context>(*p->io);
  p->pool = p->system->spawn(actors::pool_actor, actors::pool_config{core::consumer_id{1}, config.work_limit, p->broker,
                                                                     &*p->io, p->pool_exec});
  p->io_work.emplace(p->io->get_executor());
  p->io_thread = std::thread([raw] { raw->io->run(); });
  return std::unique_ptr<node>(new node(std::move(p)));
}

core::result<void> node::handle(const std::string& queue, handler fn) {
  caf::scoped_actor self{*impl_->system};
  core::result<void> out;
  self->request(impl_->pool, control_timeout, actors::register_msg{queue, std::move(fn)})
      .receive([](std::uint32_t) {},
               [&](caf::error& err) { out = core::make_error(errc::invalid_argument, impl_->system->render(err)); });
  if (out) impl_->remember(queue);
  return out;
}

core::result<void> node::declare_queue(const std::string& queue) {
  caf::scoped_actor self{*impl_->system};
  core::result<void> out;
  self->request(impl_->broker, control_timeout, actors::declare_queue_msg{queue})
      .receive([](std::uint32_t) {},
               [&](caf::error& err) { out = core::make_error(errc::invalid_argument, impl_->system->render(err)); });
  if (out) impl_->remember(queue);
  return out;
}

core::result<task_handle> node::submit(const std::string& queue, bytes payload, task_options options, when_full full) {
  core::task_spec spec{queue, std::move(payload), std::move(options)};
  if (auto ok = impl_->accept(spec, full); !ok) return ok.err();
  return task_handle(impl_->enqueue(std::move(spec)));
}

core::result<std::vector<task_handle>> node::submit_batch(const std::string& queue, std::vector<bytes> payloads,
                                                          task_options options, when_full full) {
  std::size_t total_bytes = 0;
  for (const auto& p : payloads) total_bytes += p.size();
  core::task_spec probe{queue, {}, options};
  if (auto ok = impl_->precheck(probe); !ok) return ok.err();
  for (const auto& p : payloads)
    if (p.size() > impl_->config.payload_bytes_max)
      return core::make_error(errc::payload_too_large, "a payload of " + std::to_string(p.size()) + " bytes exceeds the limit");
  if (payloads.size() > impl_->config.max_queued_tasks)
    return core::make_error(errc::invalid_argument, "a batch larger than max_queued_tasks can never fit");
  if (full == when_full::wait) {
    impl_->admission->admit_waiting(total_bytes, payloads.size());
  } else if (!impl_->admission->try_admit(total_bytes, payloads.size())) {
    return core::make_error(errc::queue_full, "the node has no room for a batch of " + std::to_string(payloads.size()));
  }
  std::vector<task_handle> handles;
  handles.reserve(payloads.size());
  std::vector<actors::submission> batch;
  batch.reserve(payloads.size());
  const auto first = impl_->last_task_id.fetch_add(payloads.size(), std::memory_order_relaxed) + 1;
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    const task_id id{first + i};
    auto cell = std::make_shared<detail::task_cell>(id, impl_->link);
    handles.emplace_back(cell);
    batch.push_back(actors::submission{id, core::task_spec{queue, std::move(payloads[i]), options}, std::move(cell)});
  }
  impl_->inbox->push_many(std::move(batch));
  return handles;
}

core::result<task_id> node::submit_observed(std::string queue, bytes payload, task_options options, when_full full,
                                            std::shared_ptr<core::task_observer> observer, core::observer_tag tag) {
  return submit_observed(core::task_spec{std::move(queue), std::move(payload), std::move(options)}, full,
                         std::move(observer), tag);
}

core::result<task_id> node::submit_observed(core::task_spec&& spec, when_full full,
                                            std::shared_ptr<core::task_observer> observer, core::observer_tag tag) {
  if (auto ok = impl_->accept(spec, full); !ok) return ok.err();
  return impl_->enqueue(std::move(spec), core::observer_ref(std::move(observer), tag));
}

core::result<task_id> node::post(const std::string& queue, bytes payload, task_options options, when_full full) {
  core::task_spec spec{queue, std::move(payload), std::move(options)};
  if (auto ok = impl_->accept(spec, full); !ok) return ok.err();
  return impl_->enqueue(std::move(spec), nullptr);
}

asio::awaitable<core::result<task_handle>> node::async_submit(std::string queue, bytes payload, task_options options,
                                                              when_full full) {
  // Not a coroutine: the initiation is the awaitable, so no frame of ours
  // holds the arguments across a suspension.
  auto spec = std::make_shared<core::task_spec>(core::task_spec{std::move(queue), std::move(payload), std::move(options)});
  impl* p = impl_.get();
  return asio::async_initiate<const asio::use_awaitable_t<>, void(core::result<task_handle>)>(
      [p, spec, full](auto handler) {
        auto shared_handler = std::make_shared<decltype(handler)>(std::move(handler));
        p->submit_when_room(spec, full, [shared_handler](core::result<task_handle> r) {
          auto ex = asio::get_associated_executor(*shared_handler);
          asio::post(ex, [shared_handler, r = std::move(r)]() mutable { (*shared_handler)(std::move(r)); });
        });
      },
      asio::use_awaitable);
}

core::result<core::task_status> node::status(task_id id) const {
  caf::scoped_actor self{*impl_->system};
  core::result<core::task_status> out = core::make_error(errc::unknown_task, "no answer from the broker");
  self->request(impl_->broker, control_timeout, actors::status_msg{id})
      .receive([&](const core::task_status& s) { out = s; },
               [&](caf::error& err) { out = core::make_error(errc::unknown_task, impl_->system->render(err)); });
  return out;
}

void node::cancel(task_id id) { impl_->link->cancel(id); }

void node::watch(task_id id, std::shared_ptr<core::task_observer> observer, core::observer_tag tag) {
  impl_->link->watch(id, core::observer_ref(std::move(observer), tag), false);
}

void node::unwatch(task_id id, std::shared_ptr<core::task_observer> observer) {
  impl_->link->watch(id, std::move(observer), true);
}

namespace detail {
/// The node's side of a remote runtime's consumer actor. The node closes
/// every one when it stops, so a link kept past its node touches nothing.
class remote_handle {
 public:
  remote_handle(caf::actor consumer, caf::actor broker, core::consumer_id id)
      : consumer_(std::move(consumer)), broker_(std::move(broker)), id_(id) {}
  template <class Message>
  void send(Message&& m) {
    std::lock_guard lock(mutex_);
    if (consumer_) caf::anon_send(consumer_, std::forward<Message>(m));
  }
  /// Reports and demand straight to the broker, as this consumer's.
  void update(std::vector<actors::remote_report> reports, std::uint32_t demand) {
    std::lock_guard lock(mutex_);
    if (consumer_) caf::anon_send(broker_, actors::consumer_update_msg{id_, std::move(reports), demand, 0});
  }
  void close() {
    std::lock_guard lock(mutex_);
    if (consumer_) caf::anon_send_exit(consumer_, caf::exit_reason::user_shutdown);
    consumer_ = nullptr;
  }

 private:
  std::mutex mutex_;
  caf::actor consumer_;
  caf::actor broker_;
  core::consumer_id id_;
};
}  // namespace detail

namespace {
/// Demand and results through the consumer actor, which checks each
/// result's lease against the leases it saw dispatched.
class actor_remote_link final : public actors::remote_link {
 public:
  explicit actor_remote_link(std::shared_ptr<detail::remote_handle> h) : handle_(std::move(h)) {}
  ~actor_remote_link() override { close(); }
  void demand(std::uint32_t n) override { handle_->send(actors::remote_demand_msg{n}); }
  void report(std::vector<actors::remote_report> reports) override {
    handle_->send(actors::remote_reports_msg{std::move(reports)});
  }
  void close() override { handle_->close(); }

 private:
  std::shared_ptr<detail::remote_handle> handle_;
};

/// Demand and results straight to the broker, for a session that keeps its
/// runtime's leases (remote_consumer_config::session_keeps_leases).
class direct_remote_link final : public actors::remote_link {
 public:
  explicit direct_remote_link(std::shared_ptr<detail::remote_handle> h) : handle_(std::move(h)) {}
  ~direct_remote_link() override { close(); }
  void demand(std::uint32_t n) override { handle_->update({}, n); }
  void report(std::vector<actors::remote_report> reports) override { handle_->update(std::move(reports), 0); }
  void update(std::vector<actors::remote_report> reports, std::uint32_t demand) override {
    if (!reports.empty() || demand > 0) handle_->update(std::move(reports), demand);
  }
  void close() override { handle_->close(); }

 private:
  std::shared_ptr<detail::remote_handle> handle_;
};
}  // namespace

std::unique_ptr<actors::remote_link> node::attach_remote(std::vector<std::string> queues,
                                                         std::shared_ptr<actors::remote_sink> sink,
                                                         bool session_keeps_leases) {
  const core::consumer_id id{impl_->last_consumer_id.fetch_add(1) + 1};
  for (const auto& q : queues) impl_->remember(q);  // submits to these queues pass the precheck
  auto consumer = impl_->system->spawn(
      actors::remote_consumer_actor,
      actors::remote_consumer_config{id, impl_->broker, std::move(queues), std::move(sink), session_keeps_leases});
  auto handle = std::make_shared<detail::remote_handle>(std::move(consumer), impl_->broker, id);
  {
    std::lock_guard lock(impl_->remotes_mutex);
    std::erase_if(impl_->remotes, [](const std::weak_ptr<detail::remote_handle>& w) { return w.expired(); });
    impl_->remotes.push_back(handle);
  }
  if (session_keeps_leases) return std::make_unique<direct_remote_link>(std::move(handle));
  return std::make_unique<actor_remote_link>(std::move(handle));
}

void node::queue_stats_async(std::function<void(std::vector<core::queue_stats>)> done) const {
  impl_->link->send(actors::queue_stats_query_msg{std::move(done)});
}

void node::status_async(task_id id, std::function<void(core::result<core::task_status>)> done) const {
  impl_->link->send(actors::status_query_msg{id, std::move(done)});
}

bool node::host_actors(std::function<void()> wake) {
  if (!impl_->hosted) return false;
  impl_->hosted->host(std::move(wake));
  return true;
}

void node::run_actors(std::size_t budget) {
  if (impl_->hosted) impl_->hosted->run(budget);
}

void node::unhost_actors() {
  if (impl_->hosted) impl_->hosted->unhost();
}

void node::set_work_limit(std::uint32_t limit) {
  if (limit == 0) limit = 1;  // a node that can run nothing would hold its tasks forever
  impl_->work_limit = limit;
  caf::anon_send(impl_->pool, actors::limit_atom::value, limit);
}

std::uint32_t node::work_limit() const { return impl_->work_limit.load(); }

node_stats node::stats() const {
  node_stats out;
  caf::scoped_actor self{*impl_->system};
  self->request(impl_->broker, control_timeout, actors::stats_atom::value)
      .receive(
          [&](const actors::broker_stats& b) {
            out.queues = b.queues;
            out.live_tasks = b.live_tasks;
            out.live_bytes = b.live_bytes;
            out.dead_letters = b.dead_letters;
          },
          [](caf::error&) {});
  self->request(impl_->pool, control_timeout, actors::stats_atom::value)
      .receive(
          [&](const actors::pool_stats& p) {
            out.work_limit = p.work_limit;
            out.running = p.running;
            out.parked = p.parked;
            out.peak_running = p.peak_running;
            out.completed = p.completed;
          },
          [](caf::error&) {});
  return out;
}

bool node::drain(std::chrono::nanoseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (stats().live_tasks == 0 && impl_->admission->live_tasks() == 0) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void node::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  if (impl_->hosted) impl_->hosted->unhost();  // a gateway still hosting them is stopping after us
  impl_->io_work.reset();
  impl_->io->stop();
  if (impl_->io_thread.joinable()) impl_->io_thread.join();
  impl_->link->cut();
  {
    std::lock_guard lock(impl_->remotes_mutex);
    for (auto& w : impl_->remotes)
      if (auto h = w.lock()) h->close();
    impl_->remotes.clear();
  }
  caf::anon_send_exit(impl_->pool, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(impl_->broker, caf::exit_reason::user_shutdown);
  impl_->pool = nullptr;
  impl_->broker = nullptr;
  impl_->system->await_all_actors_done();
  impl_->system.reset();
  impl_->io.reset();  // destroys pending operations while pool_exec still lives
}

}  // namespace drover
