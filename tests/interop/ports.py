"""Loopback ports for the interop suites."""
import socket


def free_ports(n):
    """n distinct loopback ports that are free for both TCP and UDP right now. Every socket
    is held until all n are chosen, so no two are the same. Another process can still take
    one before it is used: callers that start servers retry on "address already in use"."""
    held, ports = [], []
    try:
        while len(ports) < n:
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(t)
            t.bind(("127.0.0.1", 0))
            p = t.getsockname()[1]
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(u)
            try:
                u.bind(("127.0.0.1", p))
            except OSError:
                continue
            ports.append(p)
    finally:
        for s in held:
            s.close()
    return ports
