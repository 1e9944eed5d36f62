"""A TCP listener on a free loopback port, for tests on either interpreter
(the simulated radio's bridge connects to it)."""

import os
import socket


def listen():
    """-> (listening socket, port) on 127.0.0.1, a random free port in 20000..49999."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for _attempt in range(50):
        port = 20000 + (os.urandom(1)[0] << 8 | os.urandom(1)[0]) % 30000
        try:
            srv.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
            break
        except OSError:
            continue
    srv.listen(1)
    return srv, port
