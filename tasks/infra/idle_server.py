"""The process of a Prefect server mlpipe starts: Prefect's API, its services and its UI in uvicorn,
as `prefect server start` runs them, stopping itself once no call has come for `idle_seconds`.
Run as `python -m tasks.infra.idle_server PORT IDLE_SECONDS [--ephemeral]`: the project's server
(tasks/infra/project_server.py), or with --ephemeral and `inf` a run's temporary API
(local_servers.start_temporary_prefect_api), which has the fewer services of Prefect's own."""

import asyncio
import logging
import sys
import time

from tasks.infra.local_servers import HOST


class IdleWatch:
    """ASGI middleware that knows how long the API has had no call: an open request or websocket
    (a flow run's events) counts as a call until it ends."""

    def __init__(self, app) -> None:
        self.app = app
        self.open = 0
        self.last = time.monotonic()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)  # lifespan: the services start and stop
        self.open += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open -= 1
            self.last = time.monotonic()

    def idle_seconds(self) -> float:
        return 0.0 if self.open else time.monotonic() - self.last


def serve(port: int, idle_seconds: float, ephemeral: bool = False) -> None:
    import uvicorn
    from prefect.server.api.server import create_app

    watch = IdleWatch(create_app(ephemeral=ephemeral, final=True))
    config = uvicorn.Config(watch, host=HOST, port=port, log_level="warning", timeout_keep_alive=5, lifespan="on")
    server = uvicorn.Server(config)

    async def stop_when_idle() -> None:
        while not server.started:  # start-up (the database's migrations) is no idle time
            await asyncio.sleep(0.2)
        watch.last = time.monotonic()
        while not server.should_exit:
            await asyncio.sleep(min(5.0, idle_seconds / 4))
            if watch.idle_seconds() > idle_seconds:
                logging.getLogger("uvicorn.error").warning("No API call for %.0f s: stopping.", idle_seconds)
                server.should_exit = True

    async def main() -> None:
        watcher = asyncio.create_task(stop_when_idle())
        try:
            await server.serve()
        finally:
            watcher.cancel()

    asyncio.run(main())


if __name__ == "__main__":
    serve(int(sys.argv[1]), float(sys.argv[2]), ephemeral="--ephemeral" in sys.argv[3:])
