"""The cello_twisted app measured by bench/run.py (same responses as raw_twisted.py)."""

import sys

from cello_twisted import App

app = App()


@app.get("/")
def hello(request):
    return {"message": "Hello, World!"}


@app.get("/users/{id}")
def user(request):
    return {"id": request.params["id"], "name": "user"}


@app.post("/echo")
def echo(request):
    return request.json()


if __name__ == "__main__":
    from twisted.internet import reactor

    app.env, app.debug = "production", False
    # `cello_app.py [httptools|twisted] PORT`: the HTTP/1.1 layer (default: httptools when installed).
    port = int(sys.argv[-1])
    kwargs = {"http_parser": sys.argv[1]} if len(sys.argv) > 2 else {}
    reactor.listenTCP(port, app.site(**kwargs), interface="127.0.0.1", backlog=1024)
    reactor.run()
