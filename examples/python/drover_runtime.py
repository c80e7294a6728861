#!/usr/bin/env python3
"""A drover runtime in Python, standard library only, written from docs/protocol.md alone.

It serves queues of a drover node as a remote runtime, over the WebSocket runtime protocol
(`/v1/runtime`, the default), server-sent events (`--transport sse`), or the long-poll fallback
(`--transport poll`, for proxies that forbid streaming). Each task runs a shell command with the payload on its stdin; its stdout is
the result. Exit status 0 succeeds, 100 fails for good, anything else fails and is retried:
the contract of `drover runtime --exec`, with the same DROVER_TASK_ID, DROVER_ATTEMPT and
DROVER_QUEUE in the command's environment.

    python3 examples/python/drover_runtime.py --connect 127.0.0.1:7700 --queue demo --exec 'tr a-z A-Z'

Over WebSocket its session is resumable: when the connection drops it reconnects with backoff
and takes its session back with the leases it still holds, so commands that are running keep
their tasks (within the node's `runtime_lease_ttl_ms`). SIGINT or SIGTERM stops the commands,
closes the connection with a close frame (long-poll: leaves its session), so that the node
requeues what it held at once, and exits 0.
"""

import argparse
import base64
import collections
import concurrent.futures
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

from drover_protocol import (OP_BINARY, OP_PING, OP_TEXT, Backoff, ConnectionLost, ProtocolError, WebSocket,
                             read_records, record, split_address)

EXIT_PERMANENT_FAILURE = 100


def log(message):
    print(f"drover_runtime.py: {message}", file=sys.stderr, flush=True)


# --- Running a task's command ----------------------------------------------------------------


class Job:
    """A task this runtime holds: its lease, the command running it, its outcome once known."""

    def __init__(self, task):
        self.task = task
        self.process = None
        self.dropped = False  # cancelled, or lost with an expired session: its outcome is not sent

    @property
    def key(self):
        return (self.task["task"], self.task["lease"])

    def drop(self):
        self.dropped = True
        self.kill()

    def kill(self):
        """Kills the command with everything it started (its own process group), so that
        no child of the shell keeps its output open."""
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def run(self, command, payload):
        """(ok, result bytes, failure message, retryable)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DROVER_")}
        env.update(DROVER_TASK_ID=str(self.task["task"]), DROVER_ATTEMPT=str(self.task["attempt"]),
                   DROVER_QUEUE=self.task["queue"])
        try:
            self.process = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, env=env, start_new_session=True)
            if self.dropped:
                self.kill()
            out, _ = self.process.communicate(payload)
        except OSError as e:
            return False, b"", f"cannot start the command: {e}", True
        status = self.process.returncode
        if status == 0:
            return True, out, "", False
        status = status if status > 0 else 128 - status
        return False, b"", f"the command exited with status {status}", status != EXIT_PERMANENT_FAILURE


# --- WebSocket runtime -----------------------------------------------------------------------


class WebSocketRuntime:
    """docs/protocol.md, "Runtime protocol: WebSocket": hello → welcome, demand, task records,
    results as records and failures as text, cancels, resume with `session` and `holding`."""

    def __init__(self, args):
        self.args = args
        self.host, self.port = split_address(args.connect)
        self.capacity = args.capacity
        self.lock = threading.Lock()  # guards everything below, and orders sends
        self.ws = None
        self.session = None
        self.asked = 0                 # demand the node still counts for us
        self.jobs = {}                 # (task, lease) -> Job: running, or finished and not yet sent
        self.unsent = collections.OrderedDict()  # (task, lease) -> message to send once connected
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.capacity)
        self.stopping = False

    def serve(self):
        backoff = Backoff()
        while not self.stopping:
            try:
                self.connect()
                backoff.succeeded()
                self.read_until_lost()
            except (ConnectionLost, OSError, ProtocolError) as e:
                if self.stopping:
                    break
                if isinstance(e, ProtocolError) and e.fatal():
                    raise
                log(f"connection lost ({e}); reconnecting in {backoff.delay:.1f} s")
            with self.lock:
                if self.ws:
                    self.ws.sock.close()
                self.ws = None
            if not self.stopping:
                backoff.wait()
        self.shut_down()

    def connect(self):
        ws = WebSocket(self.host, self.port, "/v1/runtime", self.args.token)
        hello = {"type": "hello", "runtime": self.args.name, "queues": self.args.queue,
                 "capacity": self.capacity, "resumable": True, "batch": True}
        if self.args.token:
            hello["token"] = self.args.token
        with self.lock:
            if self.session is not None:
                hello["session"] = self.session
                hello["holding"] = [{"task": t, "lease": l} for (t, l) in self.jobs]
        ws.send_json(hello)
        opcode, data = ws.receive()
        welcome = json.loads(data) if opcode == OP_TEXT else {}
        if welcome.get("type") != "welcome":
            raise ProtocolError(f"expected a welcome, got {data[:200]!r}")
        with self.lock:
            if not welcome["resumed"]:
                # A new session: whatever ran for the old one is not ours to report any more.
                for job in self.jobs.values():
                    job.drop()
                self.jobs.clear()
                self.unsent.clear()
            self.ws, self.session, self.asked = ws, welcome["session"], welcome["granted"]
            self.heartbeat = welcome["heartbeat_ms"] / 1000.0
            pending, self.unsent = self.unsent, collections.OrderedDict()
            for key, message in pending.items():
                self.send_locked(key, message)  # one that fails is kept for the next connection
            self.ask_locked()
        print(f"serving {','.join(self.args.queue)} on {self.args.connect} as session {self.session}"
              f"{' (resumed)' if welcome['resumed'] else ''}", flush=True)

    def read_until_lost(self):
        """Reads until the connection dies. Pings a silent node after 2 heartbeats and gives it
        up after 4, as the protocol suggests: every frame counts, the node's pings too."""
        ws, pinged = self.ws, False
        ws.sock.settimeout(max(self.heartbeat, 0.05))
        while not self.stopping:
            try:
                opcode, data = ws.receive()
            except socket.timeout:
                silent = time.monotonic() - ws.last_frame
                if silent > 4 * self.heartbeat:
                    raise ConnectionLost(f"the node was silent for {silent:.1f} s")
                if silent <= 2 * self.heartbeat:
                    pinged = False
                elif not pinged:
                    ws.send(OP_PING, b"")
                    pinged = True
                continue
            if opcode == OP_BINARY:
                for header, body in read_records(data):
                    if header.get("type") == "task":
                        self.start(header, body)
            else:
                self.on_control(json.loads(data))

    def start(self, task, payload):
        job = Job(task)
        with self.lock:
            self.asked -= 1
            if self.stopping:  # closing: the node takes it back with the connection
                return
            self.jobs[job.key] = job
        self.pool.submit(self.run, job, payload)

    def run(self, job, payload):
        ok, result, message, retryable = job.run(self.args.exec, payload)
        task = job.task
        if ok:
            outcome = (OP_BINARY, record({"type": "result", "task": task["task"], "lease": task["lease"],
                                          "slot": task.get("slot", 0)}, result))
        else:
            outcome = (OP_TEXT, json.dumps({"type": "failure", "task": task["task"], "lease": task["lease"],
                                            "slot": task.get("slot", 0), "message": message,
                                            "retryable": retryable}).encode())
        with self.lock:
            if job.dropped or self.jobs.get(job.key) is not job:
                return
            if self.ws is None:
                self.unsent[job.key] = outcome  # sent after the welcome; listed in `holding` till then
                return
            self.send_locked(job.key, outcome)
            self.ask_locked()

    def send_locked(self, key, message):
        """Sends the result or failure of lease `key` (task, lease); the lease is then no longer
        held. A send that fails leaves the outcome for the next connection, whose hello lists
        the lease in `holding`."""
        try:
            self.ws.send(*message)
            self.jobs.pop(key, None)
        except ConnectionLost:
            self.unsent[key] = message

    def ask_locked(self):
        """Asks for what capacity is free, in steps of a quarter of it while the node still
        holds some of our demand, so that tasks come several to a message."""
        free = self.capacity - len(self.jobs) - self.asked
        if free > 0 and (self.asked == 0 or free >= max(1, self.capacity // 4)) and self.ws is not None:
            try:
                self.ws.send_json({"type": "demand", "n": free})
                self.asked += free
            except ConnectionLost:
                pass

    def on_control(self, message):
        kind = message.get("type")
        if kind == "cancel":
            with self.lock:
                job = self.jobs.pop((message["task"], message["lease"]), None)
                if job:
                    job.drop()
                self.unsent.pop((message["task"], message["lease"]), None)
                self.ask_locked()
        elif kind == "error":
            log(f"the node refused a message: {message.get('code')}: {message.get('message')}")
        elif kind != "heartbeat":
            log(f"ignored a message of type {kind!r}")

    def stop(self):
        self.stopping = True
        with self.lock:
            if self.ws:
                self.ws.close()

    def shut_down(self):
        with self.lock:
            for job in self.jobs.values():
                job.drop()
        self.pool.shutdown(wait=True)


# --- Runtimes over plain HTTP: long-poll and server-sent events --------------------------------


class HttpRuntime:
    """What the long-poll and SSE runtimes share: a session named in every request, results
    posted by the worker that ran the task, cancels, and leaving."""

    mode = None

    def __init__(self, args):
        self.args = args
        self.host, self.port = split_address(args.connect)
        self.capacity = args.capacity
        self.lock = threading.Condition()  # guards the session and the jobs
        self.session = None
        self.jobs = {}
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.capacity)
        self.local = threading.local()
        self.blocking = None  # the socket the main thread waits on (a claim, a stream): shut at stop
        self.stopping = False

    def post(self, path, body, timeout=70.0, wakeable=False):
        """(status, JSON answer) over this thread's keep-alive connection; one retry on a
        connection the node closed meanwhile. A `wakeable` request (a claim) ends at stop()."""
        for attempt in (1, 2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            try:
                conn.request("POST", path, json.dumps(body), self.headers({"Content-Type": "application/json"}))
                if wakeable:
                    self.blocking = conn.sock
                reply = conn.getresponse()
                return reply.status, json.loads(reply.read() or b"{}")
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt == 2 or self.stopping:
                    raise

    def headers(self, more):
        if self.args.token:
            more["Authorization"] = f"Bearer {self.args.token}"
        return more

    def announce(self, resumed=False):
        print(f"serving {','.join(self.args.queue)} on {self.args.connect} as session {self.session}"
              f" ({self.mode}{', resumed' if resumed else ''})", flush=True)

    def start(self, task):
        """Runs a task the node sent, unless stopping (the node takes it back with the session)."""
        job = Job(task)
        with self.lock:
            if self.stopping:
                return
            self.jobs[job.key] = job
        self.pool.submit(self.run, job, base64.b64decode(task["payload_base64"]))

    def cancel(self, cancels):
        with self.lock:
            for c in cancels:
                job = self.jobs.pop((c["task"], c["lease"]), None)
                if job:
                    job.drop()
            self.lock.notify_all()

    def run(self, job, payload):
        ok, result, message, retryable = job.run(self.args.exec, payload)
        task = job.task
        report = {"task": task["task"], "lease": task["lease"], "slot": task.get("slot", 0), "ok": ok}
        if ok:
            report["value_base64"] = base64.b64encode(result).decode()
        else:
            report.update(message=message, retryable=retryable)
        with self.lock:
            session = self.session
        if not job.dropped and session is not None:
            try:
                status, answer = self.post("/v1/runtime/results", {"session": session, "results": [report]})
                if status == 202:
                    self.cancel(answer.get("cancels", []))
                    for error in answer.get("errors", []):
                        log(f"the node refused a result: {error}")
                elif status == 404:
                    self.new_session()
            except (OSError, http.client.HTTPException) as e:
                log(f"could not report task {task['task']} ({e}); it runs again once its lease times out")
        with self.lock:
            if self.jobs.get(job.key) is job:
                del self.jobs[job.key]
            self.lock.notify_all()
        self.finished()

    def finished(self):
        """A job ended and left room."""

    def new_session(self):
        """The session ended on the node (idle, or its leases expired): what ran for it is not
        ours to report any more; the next request opens a new one."""
        with self.lock:
            for job in self.jobs.values():
                job.drop()
            self.jobs.clear()
            self.session = None

    def leave(self):
        """Ends the session now, so that the node requeues what it held at once rather than
        after poll_session_idle_ms."""
        with self.lock:
            session, self.session = self.session, None
        if session is not None:
            if getattr(self.local, "conn", None) is not None:  # stop() may have shut it
                self.local.conn.close()
                self.local.conn = None
            try:
                self.post("/v1/runtime/leave", {"session": session})
            except (OSError, http.client.HTTPException) as e:
                log(f"could not leave session {session} ({e}); the node ends it when idle")

    def stop(self):
        self.stopping = True
        with self.lock:
            for job in self.jobs.values():
                job.drop()
            self.lock.notify_all()
        self.wake()

    def wake(self):
        """Shuts the socket the main thread waits on: a waiting claim or a stream ends."""
        if self.blocking is not None:
            try:
                self.blocking.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class PollRuntime(HttpRuntime):
    """docs/protocol.md, "Runtime protocol: long-poll": claims with `max` = free capacity and a
    long `wait_ms`."""

    mode = "long-poll"

    def serve(self):
        announced, backoff = False, Backoff()
        while not self.stopping:
            free, session = self.wait_for_room()
            if self.stopping:
                break
            # The first claim answers at once, so that the runtime says it serves only once
            # the node knows it; later ones wait for tasks.
            claim = {"max": free, "wait_ms": 20000 if announced else 0}
            if session is None:
                claim["queues"] = self.args.queue
                claim["runtime"] = self.args.name
            else:
                claim["session"] = session
            try:
                status, answer = self.post("/v1/runtime/claim", claim, wakeable=True)
            except (OSError, http.client.HTTPException) as e:
                if self.stopping:
                    break
                log(f"claim failed ({e}); retrying in {backoff.delay:.1f} s")
                backoff.wait()
                continue
            backoff.succeeded()
            if status == 404:  # the session expired: its leases went back to the queue
                self.new_session()
                continue
            if status != 200:
                raise ProtocolError(f"claim refused: {status} {answer}")
            with self.lock:
                self.session = answer["session"]
            if not announced:
                self.announce()
                announced = True
            self.cancel(answer.get("cancels", []))
            for error in answer.get("errors", []):
                log(f"the node refused a result: {error}")
            for task in answer.get("tasks", []):
                self.start(task)
        self.leave()
        self.pool.shutdown(wait=True)

    def wait_for_room(self):
        """(free capacity, session) once some capacity is free. While every slot is busy it
        names the session every --poll-keepalive-ms (an empty notes list), which keeps the
        session from ending after the node's poll_session_idle_ms without a request."""
        while True:
            with self.lock:
                if self.stopping or len(self.jobs) < self.capacity:
                    return self.capacity - len(self.jobs), self.session
                if self.lock.wait(timeout=self.args.poll_keepalive_ms / 1000) or self.session is None:
                    continue
                session = self.session
            try:
                self.post("/v1/runtime/notes", {"session": session, "notes": []})
            except (OSError, http.client.HTTPException) as e:
                log(f"could not reach the node ({e})")


class SseRuntime(HttpRuntime):
    """docs/protocol.md, "Runtime protocol: server-sent events": tasks arrive as events on one
    stream; results and more demand go back as POSTs. A dropped stream resumes with the session
    and Last-Event-ID."""

    mode = "sse"

    def __init__(self, args):
        super().__init__(args)
        self.requested = 0       # demand the node counts for the session
        self.last_event_id = 0

    def serve(self):
        backoff = Backoff()
        while not self.stopping:
            try:
                self.follow_stream()
                backoff.succeeded()
            except (OSError, http.client.HTTPException, ConnectionLost) as e:
                if self.stopping:
                    break
                log(f"stream lost ({e}); resuming in {backoff.delay:.1f} s")
                backoff.wait()
        self.leave()
        self.pool.shutdown(wait=True)

    def follow_stream(self):
        with self.lock:
            session = self.session
        if session is None:
            target = (f"/v1/runtime/stream?queues={','.join(self.args.queue)}&capacity={self.capacity}"
                      f"&runtime={urllib.parse.quote(self.args.name)}")
        else:
            target = f"/v1/runtime/stream?session={session}"
        # Keepalives come every 15 s: three missed mean the node or the network is gone.
        conn = http.client.HTTPConnection(self.host, self.port, timeout=45.0)
        try:
            headers = self.headers({"Accept": "text/event-stream"})
            if session is not None:
                headers["Last-Event-ID"] = str(self.last_event_id)
            conn.request("GET", target, headers=headers)
            self.blocking = conn.sock  # the response takes it over: conn.sock goes
            reply = conn.getresponse()
            if reply.status == 404 and session is not None:
                self.new_session()  # it ended while the stream was down
                return
            if reply.status != 200:
                raise ProtocolError(f"stream refused: {reply.status} {reply.read()[:200]!r}")
            event = {}
            while not self.stopping:
                line = reply.readline()
                if not line:
                    raise ConnectionLost("the stream ended")
                line = line.decode().rstrip("\r\n")
                if not line:
                    if event:
                        self.on_event(event)
                    event = {}
                elif not line.startswith(":"):  # a comment is a keepalive
                    field, _, value = line.partition(":")
                    event[field] = value[1:] if value.startswith(" ") else value
        finally:
            conn.close()

    def on_event(self, event):
        kind, data = event.get("event"), json.loads(event.get("data") or "{}")
        if kind == "welcome":
            with self.lock:
                resumed = data["session"] == self.session
                self.session, self.requested = data["session"], data["requested"]
            self.announce(resumed)
            self.ask()
        elif kind == "task":
            self.last_event_id = int(event.get("id", self.last_event_id))
            with self.lock:
                self.requested -= 1
            self.start(data)
        elif kind == "cancel":
            self.cancel([data])

    def finished(self):
        self.ask()

    def ask(self):
        """Asks for the free capacity, in steps of a quarter of it while the node still counts
        some demand. A demand whose answer is lost may or may not have counted: the stream is
        resumed to learn it (its welcome's `requested`), rather than asked again."""
        with self.lock:
            free = self.capacity - len(self.jobs) - self.requested
            if free <= 0 or self.session is None or self.stopping:
                return
            if self.requested > 0 and free < max(1, self.capacity // 4):
                return
            self.requested += free
            session = self.session
        try:
            status, answer = self.post("/v1/runtime/demand", {"session": session, "n": free})
            if status != 202:
                log(f"demand refused: {status} {answer}")
                with self.lock:
                    self.requested -= free
        except (OSError, http.client.HTTPException):
            self.wake()

    def new_session(self):
        super().new_session()
        with self.lock:
            self.requested, self.last_event_id = 0, 0


# --- Command line ----------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connect", default=os.environ.get("DROVER_CONNECT", "127.0.0.1:7700"),
                        help="the node's host:port")
    parser.add_argument("--queue", action="append", required=True, help="a queue to serve (repeatable)")
    parser.add_argument("--exec", required=True, help="shell command per task: payload on stdin, stdout is the result")
    parser.add_argument("--capacity", type=int, default=4, help="most tasks running at once (1-1000)")
    parser.add_argument("--transport", choices=["websocket", "poll", "sse"], default="websocket",
                        help="websocket (resumable sessions) | poll (long-poll) | sse (server-sent events)")
    parser.add_argument("--token", default=os.environ.get("DROVER_TOKEN"), help="bearer token")
    parser.add_argument("--poll-keepalive-ms", type=int, default=10000,
                        help="long-poll: while all capacity is busy, name the session this often (keep it "
                             "below the node's poll_session_idle_ms)")
    parser.add_argument("--name", default=f"python-{os.getpid()}", help="a name for the node's logs")
    args = parser.parse_args()
    if not 1 <= args.capacity <= 1000:
        parser.error("--capacity must be 1-1000")
    runtime = {"websocket": WebSocketRuntime, "poll": PollRuntime, "sse": SseRuntime}[args.transport](args)

    def on_signal(signum, frame):
        threading.Thread(target=runtime.stop, daemon=True).start()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        runtime.serve()
    except ProtocolError as e:
        log(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
