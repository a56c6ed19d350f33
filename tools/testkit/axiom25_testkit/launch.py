"""A service binary on free loopback ports: started with its ports set to 0, its JSON log read up
to the `Listening` line (which names the bound ports), then `/readyz` on its admin port polled
until it answers 200."""

import json
import os
import subprocess
import threading
import time

from axiom25_testkit.http import request


class Service:
    """A running service binary; a context manager that stops it on exit."""

    def __init__(self, process, listening):
        self.process = process
        self.listening = listening

    @property
    def pid(self):
        return self.process.pid

    def port(self, name):
        """The port the `Listening` line names `{name}_port` (grpc, http, admin)."""
        return self.listening[f"{name}_port"]

    def address(self, name):
        return f"127.0.0.1:{self.port(name)}"

    def url(self, name):
        return f"http://{self.address(name)}"

    def stop(self, timeout=30):
        """SIGTERM, then waits up to `timeout` seconds (killing it after that); its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()


def launch(binary, env=None, *, ports=("grpc", "admin"), ready=True, timeout=30) -> Service:
    """Starts `binary` with `env` on 127.0.0.1, each of `ports` on port 0; returns once it logged
    `Listening` and (when `ready` and it has an admin port) its `/readyz` answers 200."""
    environment = {"PATH": os.environ.get("PATH", ""), "AXIOM25__SERVER__HOST": "127.0.0.1"}
    environment.update({f"AXIOM25__SERVER__{name.upper()}_PORT": "0" for name in ports})
    environment.update(env or {})
    process = subprocess.Popen([str(binary)], env=environment, stdout=subprocess.PIPE, text=True)
    # A silent process that never exits would block the read below: a timer ends it.
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        listening = next((entry for entry in map(_json, process.stdout) if entry.get("message") == "Listening"), None)
    finally:
        watchdog.cancel()
    if listening is None:
        process.kill()
        raise RuntimeError(f"{binary} exited (or was silent for {timeout} s) before listening")
    # Keep draining stdout so the process never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    service = Service(process, listening)
    if ready and "admin_port" in listening:
        _wait_ready(service, timeout)
    return service


def _json(line):
    try:
        entry = json.loads(line)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}


def _wait_ready(service, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if request(f"{service.url('admin')}/readyz", timeout=5).status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline or service.process.poll() is not None:
            service.process.kill()
            raise RuntimeError(f"{service.process.args[0]} was not ready within {timeout} s")
        time.sleep(0.02)
