"""Free TCP ports on 127.0.0.1, for servers and clusters the tests start."""

import socket


def free_ports(count=1, consecutive=False):
    """`count` distinct ports with nothing listening (bound together, then released); with
    `consecutive`, ports p, p+1, ... (keras-tuner's chief serves two searches on p and p+1)."""
    for _ in range(100):
        sockets = []
        try:
            first = socket.socket()
            sockets.append(first)
            first.bind(("127.0.0.1", 0))
            ports = [first.getsockname()[1]]
            for offset in range(1, count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", ports[0] + offset if consecutive else 0))
                ports.append(sock.getsockname()[1])
            return ports
        except OSError:  # port p+k is taken: try another p
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no {count} {'consecutive ' if consecutive else ''}free ports found")
