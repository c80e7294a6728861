#!/usr/bin/env python3
"""A drover client in Python, standard library only, written from docs/protocol.md alone.

Submits each line of its input as a task on the WebSocket client channel (`/v1/client`),
keeping at most `--window` tasks outstanding, and prints each task's result as a line. With
`--ordered` the node sends outcomes in submission order, so the output lines match the input
lines one for one; without it, each line is `ref<TAB>result` as outcomes come.

    seq 1 1000 | python3 examples/python/drover_client.py --queue upper --ordered

A task that does not succeed prints `error: <state> <code> <message>` in its place, and the
exit status is then 1. A dropped connection is taken up again: tasks the node accepted are
followed, the others submitted again under the same idempotency key, and every line still
gets exactly one outcome.
"""

import argparse
import json
import os
import sys

from drover_protocol import (OP_BINARY, OP_TEXT, Backoff, ConnectionLost, ProtocolError, WebSocket, read_records,
                             record, split_address)

CHANNEL = 1
BATCH_BYTES = 60_000  # submits gathered into one message, under the node's 64 KiB batches


def log(message):
    print(f"drover_client.py: {message}", file=sys.stderr, flush=True)


class Client:
    """Submits `payloads` (ref = index) and prints their outcomes. The connection may drop at
    any time: it reconnects with `?accepted=true`, follows the tasks the node accepted, and
    submits again, under the same idempotency key, those it never saw accepted, as
    protocol.md tells a client to. Each outcome is printed once."""

    def __init__(self, args, payloads):
        self.args = args
        self.host, self.port = split_address(args.connect)
        self.payloads = payloads
        self.key_prefix = args.key_prefix or os.urandom(8).hex()
        self.sent = 0              # refs below this were submitted at least once
        self.task_of = {}          # ref -> task id, once the node accepted it
        self.done = [False] * len(payloads)
        self.finished = 0
        self.in_flight = set()     # refs counted in this connection's window
        self.failures = 0
        self.ws = None

    def run(self):
        backoff, attempts = Backoff(), 0
        while self.finished < len(self.payloads):
            try:
                attempts += 1
                self.connect()
                attempts = 0
                backoff.succeeded()
                self.pump()
            except (ConnectionLost, OSError, ProtocolError) as e:
                if isinstance(e, ProtocolError) and e.fatal():
                    raise  # refused for good (a bad token, a broken message): trying again will not help
                if attempts >= 10:
                    raise ProtocolError(f"no connection to the node after {attempts} attempts ({e})")
                log(f"connection lost ({e}); reconnecting in {backoff.delay:.1f} s")
                if self.ws:
                    self.ws.sock.close()
                backoff.wait()
        return 0 if self.failures == 0 else 1

    def connect(self):
        self.ws = WebSocket(self.host, self.port, "/v1/client?batch=true&accepted=true", self.args.token)
        self.ws.send_json({"type": "open", "channel": CHANNEL, "window": self.args.window,
                           "ordered": self.args.ordered})
        opcode, data = self.ws.receive()
        if opcode != OP_TEXT or json.loads(data).get("type") != "opened":
            raise ProtocolError(f"the channel did not open: {data[:200]!r}")
        # What the last connection left without an outcome, in ref order, so that an ordered
        # channel keeps the input's order: a follow for what the node accepted, the same
        # submit again for the rest.
        self.in_flight = {ref for ref in range(self.sent) if not self.done[ref]}
        for ref in sorted(self.in_flight):
            if ref in self.task_of:
                self.ws.send_json({"type": "follow", "channel": CHANNEL, "ref": ref, "task": self.task_of[ref]})
            else:
                self.ws.send(OP_BINARY, self.submit(ref))

    def submit(self, ref):
        header = {"type": "submit", "channel": CHANNEL, "ref": ref, "queue": self.args.queue,
                  "idempotency_key": f"{self.key_prefix}-{ref}", "bytes": len(self.payloads[ref])}
        return record(header, self.payloads[ref])

    def pump(self):
        """Submits as fast as the window lets it and reads outcomes until every task has one."""
        while self.finished < len(self.payloads):
            batch, size = [], 0
            while (self.sent < len(self.payloads) and len(self.in_flight) + len(batch) < self.args.window
                   and size < BATCH_BYTES):
                batch.append(self.submit(self.sent))
                size += len(batch[-1])
                self.sent += 1
            if batch:
                self.ws.send(OP_BINARY, b"".join(batch))
                self.in_flight.update(range(self.sent - len(batch), self.sent))
            if self.in_flight and (not batch or self.sent == len(self.payloads)
                                   or len(self.in_flight) >= self.args.window):
                self.read()

    def read(self):
        """Reads one message: outcomes, an acceptance, a refused submit, or an error."""
        opcode, data = self.ws.receive()
        if opcode == OP_BINARY:
            for header, body in read_records(data):
                if header.get("type") == "outcome":
                    self.on_outcome(header, body)
            return
        message = json.loads(data)
        kind = message.get("type")
        if kind == "accepted":
            self.task_of[message["ref"]] = message["task"]
        elif kind == "rejected":
            self.finish(message["ref"], f"error: rejected {message.get('code')} {message.get('message')}", False)
        elif kind == "error":
            raise ProtocolError(f"the node refused a message: {message}")

    def on_outcome(self, header, body):
        if header.get("state") == "succeeded":
            self.finish(header["ref"], body.decode("utf-8", "replace").rstrip("\n"), True)
            return
        error = header.get("error") or {}
        self.finish(header["ref"], f"error: {header.get('state')} {error.get('code', '')} {error.get('message', '')}",
                    False)

    def finish(self, ref, line, ok):
        self.in_flight.discard(ref)
        if self.done[ref]:
            return  # its outcome came on the connection before, too
        self.done[ref] = True
        self.finished += 1
        self.failures += not ok
        print(line if self.args.ordered else f"{ref}\t{line}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connect", default=os.environ.get("DROVER_CONNECT", "127.0.0.1:7700"),
                        help="the node's host:port")
    parser.add_argument("--queue", required=True, help="the queue to submit to")
    parser.add_argument("--window", type=int, default=1000, help="most tasks outstanding (1-1000000)")
    parser.add_argument("--ordered", action="store_true", help="outcomes in submission order")
    parser.add_argument("--input", help="read payloads from this file, a line each (default: standard input)")
    parser.add_argument("--token", default=os.environ.get("DROVER_TOKEN"), help="bearer token")
    parser.add_argument("--key-prefix", help="idempotency keys are PREFIX-<line number> (default: random)")
    args = parser.parse_args()
    if not 1 <= args.window <= 1_000_000:
        parser.error("--window must be 1-1000000")
    source = open(args.input, "rb") if args.input else sys.stdin.buffer
    payloads = [line.rstrip(b"\n") for line in source]
    try:
        return Client(args, payloads).run()
    except ProtocolError as e:
        log(str(e))
        return 2


if __name__ == "__main__":
    sys.exit(main())
