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
    port = int(sys.argv[1])
    reactor.listenTCP(port, app.site(), interface="127.0.0.1", backlog=1024)
    reactor.run()
