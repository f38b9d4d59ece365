"""Hand-written raw twisted.web app: the baseline every cello_twisted figure is divided by.

Same responses as apps/cello_app.py. Twisted's per-request POST form parsing and
its access log are switched off, as any fast twisted.web app does.
"""

import json
import sys

from twisted.internet import reactor
from twisted.web import server
from twisted.web.resource import Resource


class Request(server.Request):
    def __init__(self, channel, *args, **kwargs):
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(channel, *args, **kwargs)


class Site(server.Site):
    def log(self, request):
        pass


def json_body(request, data):
    request.setHeader(b"content-type", b"application/json")
    return json.dumps(data, separators=(",", ":")).encode()


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request):
        return json_body(request, {"message": "Hello, World!"})


class User(Resource):
    isLeaf = True

    def __init__(self, user_id):
        super().__init__()
        self.user_id = user_id

    def render_GET(self, request):
        return json_body(request, {"id": self.user_id, "name": "user"})


class Users(Resource):
    def getChild(self, name, request):
        return User(name.decode())


class Echo(Resource):
    isLeaf = True

    def render_POST(self, request):
        request.content.seek(0)
        try:
            data = json.loads(request.content.read())
        except ValueError:
            request.setResponseCode(400)
            return json_body(request, {"error": "Bad Request"})
        return json_body(request, data)


def build():
    root = Resource()
    root.putChild(b"", Hello())
    root.putChild(b"users", Users())
    root.putChild(b"echo", Echo())
    return root


if __name__ == "__main__":
    port = int(sys.argv[1])
    reactor.listenTCP(port, Site(build(), requestFactory=Request), interface="127.0.0.1", backlog=1024)
    reactor.run()
