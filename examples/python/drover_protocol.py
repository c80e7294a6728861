"""What drover's Python examples share, written from docs/protocol.md: a client WebSocket
(RFC 6455) over a blocking socket, and the records that binary messages carry.
Standard library only."""

import base64
import hashlib
import json
import os
import socket
import struct
import threading
import time

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class ConnectionLost(Exception):
    pass


class ProtocolError(Exception):
    """The node broke the protocol, or closed the session (`code`: its WebSocket close code)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code

    def fatal(self):
        """A refusal for a fault of this side's (a refused upgrade, a protocol error, a bad
        hello, a wrong token, a message too big): connecting again would be refused again."""
        return self.code in (None, 1002, 1003, 1007, 1008, 1009)


# --- WebSocket (RFC 6455), client side -------------------------------------------------------


class WebSocket:
    """One client WebSocket over a blocking socket. Sends may come from any thread."""

    def __init__(self, host, port, path, token=None, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send_lock = threading.Lock()
        self.buffer = bytearray()
        self.partial, self.partial_opcode = bytearray(), None
        self.last_frame = time.monotonic()  # any frame from the node, pings included
        key = base64.b64encode(os.urandom(16))
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   f"Sec-WebSocket-Key: {key.decode()}\r\n")
        if token:
            request += f"Authorization: Bearer {token}\r\n"
        self.sock.sendall((request + "\r\n").encode())
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, rest = bytes(self.buffer).partition(b"\r\n\r\n")
        self.buffer = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            raise ProtocolError(f"the node refused the upgrade: {lines[0]}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise ProtocolError("the upgrade's Sec-WebSocket-Accept does not match the key")

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise
        except OSError as e:
            raise ConnectionLost(str(e))
        if not chunk:
            raise ConnectionLost("the node closed the connection")
        self.buffer += chunk

    def _frame(self):
        """The next whole frame in the buffer, taken out of it: (fin, opcode, payload), or None
        while it has not all arrived (so a read that times out loses nothing)."""
        if len(self.buffer) < 2:
            return None
        b0, b1 = self.buffer[0], self.buffer[1]
        if b1 & 0x80:
            raise ProtocolError("the node sent a masked frame")
        n, at = b1 & 0x7F, 2
        if n == 126:
            if len(self.buffer) < 4:
                return None
            n, at = struct.unpack_from("!H", self.buffer, 2)[0], 4
        elif n == 127:
            if len(self.buffer) < 10:
                return None
            n, at = struct.unpack_from("!Q", self.buffer, 2)[0], 10
        if len(self.buffer) < at + n:
            return None
        payload = bytes(self.buffer[at:at + n])
        del self.buffer[:at + n]
        self.last_frame = time.monotonic()
        return b0 & 0x80, b0 & 0x0F, payload

    def send(self, opcode, payload):
        """A whole message as one frame, masked as a client must. A send that fails shuts the
        socket, so that the reading thread sees the connection gone too."""
        header = bytearray([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header.append(0x80 | n)
        elif n < 65536:
            header += struct.pack("!BH", 0x80 | 126, n)
        else:
            header += struct.pack("!BQ", 0x80 | 127, n)
        mask = os.urandom(4)
        header += mask
        with self.send_lock:
            try:
                self.sock.sendall(bytes(header) + mask_bytes(payload, mask))
            except OSError as e:
                self.shut()
                raise ConnectionLost(str(e))

    def send_json(self, message):
        self.send(OP_TEXT, json.dumps(message).encode())

    def receive(self):
        """The next text or binary message: (opcode, bytes). Answers pings; raises ProtocolError
        on the node's close. A socket.timeout means nothing whole arrived within the socket's
        timeout; what did arrive stays for the next call."""
        while True:
            frame = self._frame()
            if frame is None:
                self._fill()
                continue
            fin, op, payload = frame
            if op == OP_PING:
                self.send(OP_PONG, payload)
            elif op == OP_PONG:
                pass
            elif op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                try:
                    self.send(OP_CLOSE, payload[:2])
                except ConnectionLost:
                    pass
                raise ProtocolError(f"the node closed the session: {code} {payload[2:].decode('utf-8', 'replace')}",
                                    code)
            else:
                if op != OP_CONTINUATION:
                    self.partial, self.partial_opcode = bytearray(), op
                self.partial += payload
                if fin:
                    message, self.partial = bytes(self.partial), bytearray()
                    return self.partial_opcode, message

    def shut(self):
        """Ends the connection both ways; a thread blocked reading it wakes up."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self, code=1000):
        """A close frame, then the connection shut: the node releases this runtime's leases."""
        try:
            self.send(OP_CLOSE, struct.pack("!H", code))
        except ConnectionLost:
            pass
        self.shut()


def mask_bytes(payload, mask):
    if not payload:
        return b""
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


# --- Records: [u32 big-endian header length][header JSON][body] ------------------------------


def read_records(message):
    """The records of one binary message, as (header, body). A header with `bytes` has that
    many body bytes and may be followed by more records; one without takes the rest."""
    records, at = [], 0
    while at < len(message):
        if len(message) - at < 4:
            raise ProtocolError("a record shorter than its length prefix")
        (length,) = struct.unpack_from("!I", message, at)
        at += 4
        if length > len(message) - at:
            raise ProtocolError("a record header runs past its message")
        header = json.loads(message[at:at + length])
        at += length
        if "bytes" in header:
            body, at = message[at:at + header["bytes"]], at + header["bytes"]
            if len(body) != header["bytes"]:
                raise ProtocolError("a record body runs past its message")
        else:
            body, at = message[at:], len(message)
        records.append((header, body))
    return records


def record(header, body):
    encoded = json.dumps(header).encode()
    return struct.pack("!I", len(encoded)) + encoded + body


class Backoff:
    """How long to wait before trying the node again: 0.1 s, doubling up to 5 s, and 0.1 s
    again once a try succeeds."""

    FIRST, MOST = 0.1, 5.0

    def __init__(self):
        self.delay = self.FIRST

    def succeeded(self):
        self.delay = self.FIRST

    def wait(self):
        time.sleep(self.delay)
        self.delay = min(self.delay * 2, self.MOST)


def split_address(address):
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)
