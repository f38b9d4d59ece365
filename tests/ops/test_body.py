"""Typed request bodies and responses (SPEC_OPERATIONS §9 r5, r6): every supported kind."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, TypedDict
from unittest import mock

import attrs
import msgspec
import pydantic
from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, Response
from cello_twisted.guards import Role


@dataclasses.dataclass
class DcInner:
    x: int


@dataclasses.dataclass
class DcBody:
    name: str
    age: int
    inner: DcInner | None = None


@attrs.define
class AttrsBody:
    name: str
    age: int


class TdBody(TypedDict):
    name: str
    age: int


class StructBody(msgspec.Struct):
    name: str
    age: int
    items: list[DcInner] = []


class PydBody(pydantic.BaseModel):
    name: str
    age: int


KINDS: dict[str, Any] = {
    "dataclass": DcBody,
    "attrs": AttrsBody,
    "typeddict": TdBody,
    "struct": StructBody,
    "pydantic": PydBody,
}


def _name_of(value: Any) -> str:
    return value["name"] if isinstance(value, dict) else value.name


def typed_app() -> App:
    app = App()
    for kind, model in KINDS.items():

        def handler(request: Any, model: Any = model) -> dict:
            value = request.validated
            return {"type": type(value).__name__, "name": _name_of(value), "is_model": isinstance(value, dict if model is TdBody else model)}

        app.post(f"/{kind}", body=model)(handler)

    @app.post("/plain")
    def plain(request: Any) -> Any:
        return request.json()

    @app.post("/plain-validated")
    def plain_validated(request: Any) -> Any:
        try:
            request.validated  # noqa: B018 - the read is the test
        except RuntimeError as exc:
            return {"error": str(exc)}
        return {"error": None}

    return app


class TypedBodyKindTests(SynchronousTestCase):
    """§9 r5 for each kind: valid → handler sees the object; invalid → 422 with locations."""

    def setUp(self) -> None:
        self.client = typed_app().test_client()

    def test_valid_body_reaches_handler_as_object(self) -> None:
        """A valid body is decoded into the declared type and exposed as request.validated."""
        for kind, model in KINDS.items():
            response = self.client.post(f"/{kind}", json={"name": "ada", "age": 36})
            self.assertEqual(response.status_code, 200, kind)
            expected = "dict" if model is TdBody else model.__name__
            self.assertEqual(response.json(), {"type": expected, "name": "ada", "is_model": True}, kind)

    def test_wrong_type_is_422_locating_field(self) -> None:
        """A field of the wrong type → 422, standard body, errors[].loc ends with that field."""
        for kind in KINDS:
            response = self.client.post(f"/{kind}", json={"name": "ada", "age": "old"})
            self.assertEqual(response.status_code, 422, kind)
            body = response.json()
            self.assertEqual((body["error"], body["status"]), ("Unprocessable Entity", 422))
            self.assertTrue(body["errors"], kind)
            self.assertEqual(body["errors"][0]["loc"], ["body", "age"], kind)
            self.assertIsInstance(body["errors"][0]["msg"], str)

    def test_missing_field_is_422_locating_it(self) -> None:
        """A missing required field → 422 whose loc ends with the missing field's name."""
        for kind in KINDS:
            response = self.client.post(f"/{kind}", json={"name": "ada"})
            self.assertEqual(response.status_code, 422, kind)
            self.assertIn(["body", "age"], [e["loc"] for e in response.json()["errors"]], kind)

    def test_nested_location(self) -> None:
        """Errors inside nested objects and lists give the full path (list positions as ints)."""
        response = self.client.post("/dataclass", json={"name": "a", "age": 1, "inner": {}})
        self.assertEqual(response.json()["errors"][0]["loc"], ["body", "inner", "x"])
        response = self.client.post("/struct", json={"name": "a", "age": 1, "items": [{"x": 1}, {"x": "y"}]})
        self.assertEqual(response.json()["errors"][0]["loc"], ["body", "items", 1, "x"])

    def test_wrong_top_level_shape_is_422(self) -> None:
        """A JSON array where an object is declared → 422 located at the body itself."""
        for kind in KINDS:
            response = self.client.post(f"/{kind}", json=[1, 2])
            self.assertEqual(response.status_code, 422, kind)
            self.assertEqual(response.json()["errors"][0]["loc"][0], "body")

    def test_undecodable_bodies_are_400(self) -> None:
        """Empty, malformed, NaN/Infinity, unpaired surrogates, too deep → 400, never 422/500."""
        bad = [
            b"",
            b"   ",
            b'{"name": "a", "age": ',
            b'{"name": "a", "age": NaN}',
            b'{"name": "a", "age": Infinity}',
            b'{"name": "a", "age": -Infinity}',
            b'{"name": "\\ud800", "age": 1}',
            b'{"name": "\\udc00x", "age": 1}',
            b'{"name": "\xed\xa0\x80", "age": 1}',
            b'{"name": "a", "age": 1} trailing',
            b"\xff\xfe",
            b"[" * 600 + b"]" * 600,
            b'{"name": "a", "age": "x", ',  # a shape error before the syntax error: still 400
        ]
        for kind in KINDS:
            for raw in bad:
                response = self.client.post(f"/{kind}", data=raw, headers={"Content-Type": "application/json"})
                self.assertEqual(response.status_code, 400, (kind, raw[:30]))
                body = response.json()
                self.assertEqual((body["error"], body["status"]), ("Bad Request", 400))
                self.assertNotIn("Traceback", response.text)

    def test_nesting_up_to_512_is_decoded(self) -> None:
        """Exactly 512 levels (the limit) is not refused as too deep (rejected only for its shape)."""
        raw = b"[" * 512 + b"]" * 512
        response = self.client.post("/dataclass", data=raw, headers={"Content-Type": "application/json"})
        self.assertEqual(response.status_code, 422)

    def test_nan_inside_strings_is_fine(self) -> None:
        """The words NaN/Infinity inside strings are ordinary text."""
        for kind in KINDS:
            response = self.client.post(f"/{kind}", json={"name": "NaN Infinity", "age": 1})
            self.assertEqual(response.status_code, 200, kind)
            self.assertEqual(response.json()["name"], "NaN Infinity")

    def test_route_without_body_unchanged(self) -> None:
        """A route without body= reads request.json() as before; request.validated raises."""
        response = self.client.post("/plain", json={"anything": [1, {"goes": None}]})
        self.assertEqual(response.json(), {"anything": [1, {"goes": None}]})
        response = self.client.post("/plain-validated", json={})
        self.assertIn("body=", response.json()["error"])


class TypedBodyOrderTests(SynchronousTestCase):
    """The body is validated after guards, before the handler."""

    def test_guards_run_before_validation(self) -> None:
        """A refused request gets the guard's status, not a validation error."""
        app = App()
        calls: list[Any] = []

        @app.post("/admin", body=DcBody, guards=[Role(["admin"])])
        def admin(request: Any) -> dict:
            calls.append(request.validated)
            return {}

        response = app.test_client().post("/admin", json={"bad": True})
        self.assertEqual(response.status_code, 401)
        self.assertEqual(calls, [])

    def test_invalid_body_never_calls_handler(self) -> None:
        """A 422 or 400 leaves the handler uncalled."""
        app = App()
        calls: list[Any] = []

        @app.post("/x", body=DcBody)
        def x(request: Any) -> dict:
            calls.append(1)
            return {}

        client = app.test_client()
        client.post("/x", json={"name": 1})
        client.post("/x", data=b"{", headers={"Content-Type": "application/json"})
        self.assertEqual(calls, [])


class TypedResponseTests(SynchronousTestCase):
    """§9 r6: a returned instance of response= is encoded as JSON."""

    def test_each_kind_encoded(self) -> None:
        """Dataclass, attrs, Struct and pydantic instances come back as JSON objects."""
        app = App()
        values = {
            "dataclass": (DcBody, DcBody("a", 1)),
            "attrs": (AttrsBody, AttrsBody("a", 1)),
            "struct": (StructBody, StructBody("a", 1)),
            "pydantic": (PydBody, PydBody(name="a", age=1)),
        }
        for kind, (model, value) in values.items():
            app.get(f"/{kind}", response=model)(lambda request, value=value: value)
        client = app.test_client()
        for kind in values:
            response = client.get(f"/{kind}")
            self.assertEqual(response.status_code, 200, kind)
            self.assertEqual(response.headers.get("content-type"), "application/json")
            self.assertEqual({k: response.json()[k] for k in ("name", "age")}, {"name": "a", "age": 1}, kind)

    def test_list_tuple_async_threaded_and_other_values(self) -> None:
        """list[X], (instance, status), async and threaded handlers; other values convert as usual."""
        app = App()

        @app.get("/list", response=list[AttrsBody])
        def many(request: Any) -> list:
            return [AttrsBody("a", 1), AttrsBody("b", 2)]

        @app.post("/created", body=AttrsBody, response=AttrsBody)
        def created(request: Any) -> tuple:
            return request.validated, 201, {"X-Made": "yes"}

        @app.get("/async", response=StructBody)
        async def async_(request: Any) -> StructBody:
            await defer.succeed(None)
            return StructBody("s", 2)

        @app.get("/threaded", response=PydBody, threaded=True)
        def threaded(request: Any) -> PydBody:
            return PydBody(name="t", age=3)

        @app.get("/other", response=DcBody)
        def other(request: Any) -> Response:
            return Response.text("plain", status=202)

        client = app.test_client()
        self.assertEqual(client.get("/list").json(), [{"name": "a", "age": 1}, {"name": "b", "age": 2}])
        response = client.post("/created", json={"name": "c", "age": 3})
        self.assertEqual((response.status_code, response.json()), (201, {"name": "c", "age": 3}))
        self.assertEqual(response.headers.get("x-made"), "yes")
        self.assertEqual(client.get("/async").json(), {"name": "s", "age": 2, "items": []})
        self.assertEqual(client.get("/threaded").json(), {"name": "t", "age": 3})
        response = client.get("/other")
        self.assertEqual((response.status_code, response.text), (202, "plain"))


class TypedRegistrationTests(SynchronousTestCase):
    """Unsupported types and a missing extra are refused when the route is registered."""

    def test_unsupported_type_is_type_error(self) -> None:
        """body=int or body=dict is a TypeError naming the accepted kinds."""
        app = App()
        for bad in (int, dict, "Item", list):
            with self.assertRaises(TypeError) as caught:
                app.post("/x", body=bad)(lambda request: None)
            self.assertIn("dataclass", str(caught.exception))

    def test_without_msgspec_names_the_extra(self) -> None:
        """Without msgspec, body=<dataclass> raises ImportError naming [validation]; pydantic still works."""
        app = App()
        with mock.patch.dict(sys.modules, {"msgspec": None}):
            with self.assertRaises(ImportError) as caught:
                app.post("/x", body=DcBody)(lambda request: None)
            self.assertIn("pip install 'cello-twisted[validation]'", str(caught.exception))
            app.post("/p", body=PydBody)(lambda request: {"ok": request.validated.name})
            self.assertEqual(app.test_client().post("/p", json={"name": "n", "age": 1}).json(), {"ok": "n"})
