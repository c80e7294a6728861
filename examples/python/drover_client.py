#!/usr/bin/env python3
"""A drover client in Python, standard library only, written from docs/protocol.md alone.

Submits each line of its input as a task on the WebSocket client channel (`/v1/client`),
keeping at most `--window` tasks outstanding, and prints each task's result as a line. With
`--ordered` the node sends outcomes in submission order, so the output lines match the input
lines one for one; without it, each line is `ref<TAB>result` as outcomes come.

    seq 1 1000 | python3 examples/python/drover_client.py --queue upper --ordered

A task that does not succeed prints `error: <state> <code> <message>` in its place, and the
exit status is then 1.
"""

import argparse
import json
import os
import sys

from drover_protocol import OP_BINARY, OP_TEXT, ConnectionLost, ProtocolError, WebSocket, read_records, record, split_address

CHANNEL = 1
BATCH_BYTES = 60_000  # submits gathered into one message, under the node's 64 KiB batches


def log(message):
    print(f"drover_client.py: {message}", file=sys.stderr, flush=True)


class Client:
    def __init__(self, args):
        host, port = split_address(args.connect)
        self.args = args
        self.ws = WebSocket(host, port, "/v1/client?batch=true", args.token)
        self.ws.send_json({"type": "open", "channel": CHANNEL, "window": args.window, "ordered": args.ordered})
        opened = self.receive_text()
        if opened.get("type") != "opened":
            raise ProtocolError(f"the channel did not open: {opened}")
        self.outstanding = 0
        self.failures = 0

    def receive_text(self):
        opcode, data = self.ws.receive()
        if opcode != OP_TEXT:
            raise ProtocolError("expected a text message")
        return json.loads(data)

    def run(self, payloads):
        """Submits every payload, as fast as the window lets it, and prints every outcome."""
        pending = iter(enumerate(payloads))
        exhausted = False
        while not exhausted or self.outstanding:
            batch = []
            size = 0
            while not exhausted and self.outstanding + len(batch) < self.args.window and size < BATCH_BYTES:
                item = next(pending, None)
                if item is None:
                    exhausted = True
                    break
                ref, payload = item
                header = {"type": "submit", "channel": CHANNEL, "ref": ref, "queue": self.args.queue,
                          "bytes": len(payload)}
                batch.append(record(header, payload))
                size += len(payload)
            if batch:
                self.ws.send(OP_BINARY, b"".join(batch))
                self.outstanding += len(batch)
            if self.outstanding and (exhausted or self.outstanding >= self.args.window or not batch):
                self.read_outcomes()
        return 0 if self.failures == 0 else 1

    def read_outcomes(self):
        """Reads one message: outcomes (a window's room each), a refused submit, or an error."""
        opcode, data = self.ws.receive()
        if opcode == OP_BINARY:
            for header, body in read_records(data):
                if header.get("type") == "outcome":
                    self.print_outcome(header, body)
            return
        message = json.loads(data)
        kind = message.get("type")
        if kind == "rejected":
            self.outstanding -= 1
            self.failures += 1
            self.emit(message["ref"], f"error: rejected {message.get('code')} {message.get('message')}")
        elif kind == "error":
            raise ProtocolError(f"the node refused a message: {message}")

    def print_outcome(self, header, body):
        self.outstanding -= 1
        if header.get("state") == "succeeded":
            self.emit(header["ref"], body.decode("utf-8", "replace").rstrip("\n"))
            return
        self.failures += 1
        error = header.get("error") or {}
        self.emit(header["ref"], f"error: {header.get('state')} {error.get('code', '')} {error.get('message', '')}")

    def emit(self, ref, line):
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
    args = parser.parse_args()
    if not 1 <= args.window <= 1_000_000:
        parser.error("--window must be 1-1000000")
    source = open(args.input, "rb") if args.input else sys.stdin.buffer
    payloads = [line.rstrip(b"\n") for line in source]
    try:
        return Client(args).run(payloads)
    except (ConnectionLost, ProtocolError, OSError) as e:
        log(str(e))
        return 2


if __name__ == "__main__":
    sys.exit(main())
