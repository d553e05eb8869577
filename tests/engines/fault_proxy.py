"""A TCP proxy on loopback in front of the real OpenSearch node, to inject network faults; never an engine.

Every byte goes to the real node and back. `cut()` makes the node unreachable through the proxy (live
connections reset, new ones refused), as a node that stops mid-write looks to a client, while the shared node
itself keeps running for the other tests. `cut_after(n, marker)` cuts once `n` requests containing `marker`
have been forwarded; `drop_next_response(marker)` forwards the next such request and closes the client's
connection before the answer comes back, as a lost response does.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit


class FaultProxy:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 9200)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._cut = False
        self._cut_after: tuple[int, bytes] | None = None
        self._drop_marker: bytes | None = None
        self.forwarded: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            sockets, self._sockets = self._sockets, set()
        # shutdown, not only close: a socket blocked in accept() or recv() in another thread stays open on close
        for sock in (self._listener, *sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut_after(self, requests: int, marker: bytes) -> None:
        self._cut_after = (requests, marker)

    def drop_next_response(self, marker: bytes) -> None:
        self._drop_marker = marker

    close = cut

    def _accept(self) -> None:
        while not self._cut:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut:
                client.close()
                return
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._responses, args=(upstream, client), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                upstream.sendall(data)
                head = data[:200]
                self.forwarded.append(head)
                if self._drop_marker and head.startswith(self._drop_marker):
                    self._drop_marker = None
                    with self._lock:
                        self._sockets.discard(client)
                    client.close()  # the node still answers, to nobody
                    return
                if self._cut_after and head.startswith(self._cut_after[1]):
                    left = self._cut_after[0] - 1
                    self._cut_after = (left, self._cut_after[1]) if left else None
                    if not left:
                        self.cut()
                        return

    def _responses(self, upstream: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                client.sendall(data)
