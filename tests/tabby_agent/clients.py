"""Tabby's own IDE agent (npm `tabby-agent`, installed by `make tabby-agent`) as a child process, and the
two ways its IDE plugins talk to it: the Language Server Protocol (`--lsp --stdio`) and its JSON-lines
protocol (one `[id, {"func", "args"}]` request per line, answered `[id, result]`; events come as `[0, event]`)."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from pathlib import Path

AGENT_DIR = Path(__file__).resolve().parent
AGENT_CLI = AGENT_DIR / "node_modules" / "tabby-agent" / "dist" / "cli.js"
REPLY_TIMEOUT = 30.0  # seconds: a completion on the tiny checkpoint takes well under one


def agent_config_toml(*, endpoint: str, token: str) -> str:
    """The agent's user config (`~/.tabby-client/agent/config.toml`): the server, its token, and no usage
    data sent to Tabby's own servers."""
    return (f'[server]\nendpoint = "{endpoint}"\ntoken = "{token}"\nrequestTimeout = 30000\n\n'
            "[anonymousUsageTracking]\ndisable = true\n")


class AgentProcess:
    """`node cli.js` with HOME at `home` (where the agent reads its config and keeps its data); the lines
    it writes are read on a thread into `messages`."""

    def __init__(self, home: Path, *args: str):
        assert AGENT_CLI.exists(), "tabby-agent is not installed: run `make tabby-agent`"
        env = {"HOME": str(home), "PATH": os.environ["PATH"], "NODE_OPTIONS": "--no-deprecation"}
        self.stderr_path = home / "agent-stderr.log"
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(["node", str(AGENT_CLI), *args], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=home)
        self.messages: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        raise NotImplementedError

    def send(self, data: bytes) -> None:
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class LspAgent(AgentProcess):
    """The agent as a language server: JSON-RPC messages framed by Content-Length headers."""

    def __init__(self, home: Path):
        super().__init__(home, "--lsp", "--stdio")
        self.notifications: list[dict] = []
        self._next_id = 0

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while (line := stream.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if line == b"" or length is None:
                return
            self.messages.put(json.loads(stream.read(length)))

    def _write(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.send(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def notify(self, method: str, params: dict) -> None:
        self._write({"method": method, "params": params})

    def request(self, method: str, params: dict) -> dict:
        """The result of `method`; notifications that come first are kept in `notifications`."""
        self._next_id += 1
        self._write({"id": self._next_id, "method": method, "params": params})
        while True:
            message = self.messages.get(timeout=REPLY_TIMEOUT)
            if message.get("id") == self._next_id and "method" not in message:
                assert "error" not in message, message["error"]
                return message["result"]
            if "method" in message:
                self.notifications.append(message)


class JsonLinesAgent(AgentProcess):
    """The agent's own protocol, which Tabby's Vim and IntelliJ plugins speak."""

    def __init__(self, home: Path):
        super().__init__(home)
        self.events: list[dict] = []
        self._next_id = 0

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.strip():
                self.messages.put(json.loads(line))

    def call(self, func: str, *args):
        """The agent's answer to `func(*args)`; events that come first are kept in `events`."""
        self._next_id += 1
        self.send(json.dumps([self._next_id, {"func": func, "args": list(args)}]).encode() + b"\n")
        while True:
            request_id, result = self.messages.get(timeout=REPLY_TIMEOUT)
            if request_id == self._next_id:
                return result
            self.events.append(result)
