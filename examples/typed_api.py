"""A typed JSON API with its own description: ``python examples/typed_api.py``.

Then open http://127.0.0.1:8000/docs (Swagger UI, served by the app itself) or fetch
http://127.0.0.1:8000/openapi.json. Needs ``pip install 'cello-twisted[openapi]'``.

Each request body kind appears once: a dataclass, an attrs class, a TypedDict and a
msgspec Struct (a pydantic v2 model works the same way when pydantic is installed).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import TypedDict

import attrs
import msgspec

from cello_twisted import App, HTTPError


@dataclasses.dataclass
class NewItem:
    """What a client sends to create an item."""

    name: str
    price: float
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Item:
    """An item as stored."""

    id: int
    name: str
    price: float
    tags: list[str]
    notes: list[str]


class PriceChange(TypedDict):
    price: float


@attrs.define
class Note:
    text: str


class Search(msgspec.Struct):
    query: str
    limit: int = 10


MAX_ITEMS = 1000  # the oldest item goes when a new one would exceed this (bounded memory)

app = App()
app.state.items = OrderedDict()
app.state.next_id = 1


def _find(request) -> Item:
    item = request.app.state.items.get(int(request.params["id"]))
    if item is None:
        raise HTTPError(404, "No such item")
    return item


@app.get("/items", response=list[Item], tags=["items"], summary="List items")
def list_items(request):
    return list(request.app.state.items.values())


@app.post("/items", body=NewItem, response=Item, tags=["items"], summary="Create an item")
def create_item(request):
    """The new item gets the next id; its notes start empty."""
    new: NewItem = request.validated
    state = request.app.state
    item = Item(id=state.next_id, name=new.name, price=new.price, tags=list(new.tags), notes=[])
    state.next_id += 1
    state.items[item.id] = item
    while len(state.items) > MAX_ITEMS:
        state.items.popitem(last=False)
    return item


@app.get("/items/{id:int}", response=Item, tags=["items"], summary="Read an item")
def get_item(request):
    return _find(request)


@app.patch("/items/{id:int}", body=PriceChange, response=Item, tags=["items"], summary="Change the price")
def change_price(request):
    item = _find(request)
    item.price = request.validated["price"]
    return item


@app.post("/items/{id:int}/notes", body=Note, response=Item, tags=["items"], summary="Add a note")
def add_note(request):
    item = _find(request)
    if len(item.notes) < 100:
        item.notes.append(request.validated.text)
    return item


@app.delete("/items/{id:int}", tags=["items"], summary="Delete an item")
def delete_item(request):
    item = _find(request)
    del request.app.state.items[item.id]
    return {"deleted": item.id}


@app.post("/search", body=Search, response=list[Item], tags=["search"], summary="Find items by name")
def search(request):
    wanted: Search = request.validated
    query = wanted.query.lower()
    found = [item for item in request.app.state.items.values() if query in item.name.lower()]
    return found[: max(wanted.limit, 0)]


@app.websocket("/ws/echo")
async def echo(ws):
    """Sends every message back."""
    async for message in ws:
        await ws.send(message.data)


app.enable_openapi(title="Items", version="1.0.0", description="A typed example API.")


if __name__ == "__main__":
    app.run()
