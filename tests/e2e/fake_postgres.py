"""A fake PostgreSQL server for the end-to-end tests (PostgreSQL itself runs in other suites; this
one records what a client sends): it answers SSLRequest/GSSENCRequest with "N", asks for a
cleartext password (AuthenticationCleartextPassword), records it, and then either fails the login
(echoing the password in its error, as a hostile server would) or accepts it and answers simple
queries. It speaks the real wire protocol (v3)."""

from __future__ import annotations

import socket
import struct
import threading


class FakePostgres:
    def __init__(self, accept_login: bool):
        self.accept_login = accept_login
        self.passwords: list[str] = []
        self.queries: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self):
        self._stop = True
        self.sock.close()

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    @staticmethod
    def _recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("peer closed")
            buf += chunk
        return buf

    @staticmethod
    def _msg(kind: bytes, payload: bytes) -> bytes:
        return kind + struct.pack("!i", len(payload) + 4) + payload

    def _session(self, conn):
        conn.settimeout(10)
        try:
            while True:  # SSLRequest / GSSENCRequest, then the StartupMessage
                n = struct.unpack("!i", self._recv_exact(conn, 4))[0]
                body = self._recv_exact(conn, n - 4)
                code = struct.unpack("!i", body[:4])[0]
                if code in (80877103, 80877104):
                    conn.sendall(b"N")
                    continue
                break
            conn.sendall(self._msg(b"R", struct.pack("!i", 3)))  # AuthenticationCleartextPassword
            kind = self._recv_exact(conn, 1)
            n = struct.unpack("!i", self._recv_exact(conn, 4))[0]
            body = self._recv_exact(conn, n - 4)
            if kind == b"p":
                self.passwords.append(body.rstrip(b"\0").decode("utf-8", "replace"))
            if not self.accept_login:
                pw = body.rstrip(b"\0")
                fields = (b"SFATAL\0VFATAL\0C28P01\0M" + b"password authentication failed for user, got " + pw
                          + b"\0\0")
                conn.sendall(self._msg(b"E", fields))
                return
            out = self._msg(b"R", struct.pack("!i", 0))
            for k, v in (("server_version", "15.4"), ("client_encoding", "UTF8"), ("server_encoding", "UTF8"),
                         ("standard_conforming_strings", "on"), ("integer_datetimes", "on"),
                         ("DateStyle", "ISO, MDY"), ("TimeZone", "UTC")):
                out += self._msg(b"S", k.encode() + b"\0" + v.encode() + b"\0")
            out += self._msg(b"K", struct.pack("!ii", 4242, 99))
            out += self._msg(b"Z", b"I")
            conn.sendall(out)
            while True:
                kind = self._recv_exact(conn, 1)
                n = struct.unpack("!i", self._recv_exact(conn, 4))[0]
                body = self._recv_exact(conn, n - 4)
                if kind == b"X":
                    return
                if kind != b"Q":
                    continue
                q = body.rstrip(b"\0").decode("utf-8", "replace")
                self.queries.append(q)
                if q.strip().upper().startswith("SELECT"):
                    field = b"?column?\0" + struct.pack("!ihihih", 0, 0, 23, 4, -1, 0)
                    out = self._msg(b"T", struct.pack("!h", 1) + field)
                    out += self._msg(b"D", struct.pack("!hi", 1, 1) + b"1")
                    out += self._msg(b"C", b"SELECT 1\0")
                else:
                    out = self._msg(b"C", q.split()[0].upper().encode() + b"\0")
                out += self._msg(b"Z", b"I")
                conn.sendall(out)
        except (OSError, ConnectionError, struct.error):
            pass
        finally:
            conn.close()
