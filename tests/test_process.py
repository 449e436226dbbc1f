"""pid_alive: what a stale lock or a job's supervisor pid says about its process; free_port."""

import os
import socket
import subprocess
import sys
import time

from maru._process import free_port, pid_alive


def test_this_process_is_alive():
    assert pid_alive(os.getpid())


def test_an_exited_process_is_dead_before_and_after_it_is_reaped():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while pid_alive(child.pid) and time.monotonic() < deadline:  # a zombie until waited for
        time.sleep(0.01)
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid)


def test_a_running_child_is_alive():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert pid_alive(child.pid)
    finally:
        child.kill()
        child.wait()


def test_free_port_can_be_bound_on_loopback():
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
