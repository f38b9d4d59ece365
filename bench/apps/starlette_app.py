"""Starlette on uvicorn (uvloop + httptools): the peer server in bench/suites_peer.py.

Same responses as apps/cello_app.py. Bench-only: `pip install starlette uvicorn uvloop httptools`.
"""

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"message": "Hello, World!"})


async def user(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["id"], "name": "user"})


async def echo(request: Request) -> JSONResponse:
    return JSONResponse(await request.json())


app = Starlette(
    routes=[
        Route("/", hello),
        Route("/users/{id}", user),
        Route("/echo", echo, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        backlog=1024,
    )
