"""ASGI applications (Django's own, stand-ins for model_service) served by uvicorn in a thread of the test
process, as `make run` serves them, so that the test's settings and database apply."""
import asyncio
import threading
import time
from collections.abc import Callable

import uvicorn

from model_service.ports import free_port


class ServedInThread:
    """`with ServedInThread(app, other_app) as served:` serves each app on its own port (`served.ports`, in
    order) until the block ends; `on_loop` is called with the servers' event loop before they start."""

    def __init__(self, *apps, on_loop: Callable[[asyncio.AbstractEventLoop], None] | None = None):
        self.ports = [free_port() for _ in apps]
        self.on_loop = on_loop
        self.servers = [uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                      lifespan="off")) for app, port in zip(apps, self.ports)]
        self.thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self):
        if self.on_loop is not None:
            self.on_loop(asyncio.get_running_loop())
        await asyncio.gather(*(server.serve() for server in self.servers))

    def __enter__(self):
        self.thread.start()
        while not all(server.started for server in self.servers):
            assert self.thread.is_alive(), "uvicorn failed to start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        for server in self.servers:
            server.should_exit = True
        self.thread.join(timeout=30)
