"""A chat across workers and machines: ``python examples/chat.py --workers 2``.

Needs a Redis (``REDIS_URL``, default ``redis://localhost:6379/0``). Open
http://127.0.0.1:8000/ in two browsers: each may be served by a different worker (the
``welcome`` event names it) and still sees every message. Clients can listen with
Server-Sent Events (``GET /rooms/{room}/events``) or a WebSocket (``/rooms/{room}/ws``,
whose text messages are posted to the room); ``POST /rooms/{room}/messages`` posts.
"""

import os

from twisted.internet.defer import Deferred

from cello_twisted import App, BadRequestError, Broadcast, BroadcastOverflow, Response, SseStream

app = App()
app.broadcast = Broadcast(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
WORKER = os.getpid()
MAX_TEXT = 1000

PAGE = """<!doctype html><meta charset="utf-8"><title>chat</title>
<input id="text" placeholder="say something" autofocus><pre id="log"></pre>
<script>
const room = "lobby", log = document.getElementById("log");
const events = new EventSource(`/rooms/${room}/events`);
events.addEventListener("welcome", e => log.textContent += `served by worker ${JSON.parse(e.data).worker}\\n`);
events.addEventListener("message", e => { const m = JSON.parse(e.data); log.textContent += `${m.user}: ${m.text}\\n`; });
document.getElementById("text").addEventListener("keydown", e => {
  if (e.key !== "Enter" || !e.target.value) return;
  fetch(`/rooms/${room}/messages`, {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({user: "web", text: e.target.value})});
  e.target.value = "";
});
</script>"""


def chat_message(data):
    """A message from a client: {"user": str, "text": str} (400 otherwise)."""
    if not isinstance(data, dict):
        raise BadRequestError("expected a JSON object")
    user, text = data.get("user", "anonymous"), data.get("text")
    if not isinstance(user, str) or not isinstance(text, str) or not text:
        raise BadRequestError('"user" and "text" must be non-empty strings')
    if len(text) > MAX_TEXT or len(user) > 64:
        raise BadRequestError("message too long")
    return {"user": user, "text": text}


@app.get("/")
def page(request):
    return Response.html(PAGE)


@app.get("/rooms/{room}/events")
def events(request):
    stream = SseStream.from_broadcast(app.broadcast, "room:" + request.params["room"], event="message")
    return stream.add_event("welcome", {"worker": WORKER})


@app.post("/rooms/{room}/messages")
async def post(request):
    message = chat_message(await request.json_async())
    await app.broadcast.publish("room:" + request.params["room"], message)
    return {"ok": True, "worker": WORKER}


@app.websocket("/rooms/{room}/ws")
async def chat(ws):
    room = "room:" + ws.params["room"]
    async with app.broadcast.subscribe(room) as subscription:
        await ws.send_json({"welcome": {"worker": WORKER}})

        async def forward():
            async for message in subscription:
                if isinstance(message, BroadcastOverflow):
                    await ws.send_json({"dropped": message.dropped})
                else:
                    await ws.send_json(message)

        pump = Deferred.fromCoroutine(forward())
        pump.addErrback(lambda failure: None)  # ends when the socket or the subscription does
        try:
            async for incoming in ws:
                if incoming.is_text():
                    try:
                        message = chat_message(incoming.json())
                    except (BadRequestError, ValueError):
                        await ws.send_json({"error": "expected {\"user\": str, \"text\": str}"})
                        continue
                    await app.broadcast.publish(room, message)
        finally:
            pump.cancel()


if __name__ == "__main__":
    app.run()
