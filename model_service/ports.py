"""A free TCP port on this machine, for starting a server next to others (run_suite, tests, benchmarks)."""
import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
