"""Typed request bodies and responses: ``body=`` / ``response=`` (SPEC_OPERATIONS §9 r5, r6).

One decode-and-validate call per request: ``msgspec.json.Decoder(type).decode`` for
dataclasses, attrs classes, TypedDicts and ``msgspec.Struct``; pydantic's
``model_validate_json`` for pydantic models. The decoders are built when the routes
are compiled, so a request pays only for the call itself. Undecodable JSON is a 400,
a decoded body of the wrong shape a 422 whose ``errors`` locate each problem.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs
from twisted.internet.defer import Deferred

from ..errors import BadRequestError, HTTPError
from ..response import JSON_TYPE, Response

if TYPE_CHECKING:
    from ..request import Request

MAX_DEPTH = 512  # SPEC_OPERATIONS §11 r5: each array or object opened counts one level

_VALIDATION_EXTRA = "pip install 'cello-twisted[validation]'"
_KINDS = "a dataclass, an attrs class, a TypedDict, a msgspec.Struct or a pydantic v2 model"


# -- what a type is ----------------------------------------------------------------------


def _is_pydantic(tp: Any) -> bool:
    pydantic = sys.modules.get("pydantic")  # a pydantic model means pydantic is imported
    return pydantic is not None and isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def _is_struct(tp: Any) -> bool:
    msgspec = sys.modules.get("msgspec")
    return msgspec is not None and isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _is_plain_model(tp: Any) -> bool:
    """A kind msgspec decodes, validates and describes."""
    if not isinstance(tp, type):
        return False
    return dataclasses.is_dataclass(tp) or attrs.has(tp) or typing.is_typeddict(tp) or _is_struct(tp)


def _item_of(tp: Any) -> Any:
    """``X`` for ``list[X]``, else None."""
    if typing.get_origin(tp) is list:
        args = typing.get_args(tp)
        return args[0] if len(args) == 1 else None
    return None


def model_kind(tp: Any) -> Literal["pydantic", "msgspec"]:
    """``"pydantic"`` or ``"msgspec"``: which library handles ``tp`` (a model or ``list[model]``)."""
    item = _item_of(tp)
    target = item if item is not None else tp
    if _is_pydantic(target):
        return "pydantic"
    if _is_plain_model(target):
        return "msgspec"
    raise TypeError(f"expected {_KINDS} (or a list of one), not {tp!r}")


def require_msgspec(what: str) -> Any:
    """Import msgspec or raise ImportError naming the extra that installs it."""
    try:
        import msgspec
    except ImportError:
        raise ImportError(f"{what} needs msgspec: {_VALIDATION_EXTRA}") from None
    return msgspec


def check_model(tp: Any, option: str) -> None:
    """Refuse, at registration, a ``body=``/``response=`` type no library here can handle."""
    if tp is None:
        return
    try:
        kind = model_kind(tp)
    except TypeError:
        raise TypeError(f"{option}= takes {_KINDS} (or a list of one), not {tp!r}") from None
    if kind == "msgspec":
        require_msgspec(f"{option}={getattr(tp, '__name__', tp)!s}")


# -- errors ----------------------------------------------------------------------------------


class BodyValidationError(HTTPError):
    """422: the body is JSON but not of the declared type; ``errors`` locate each problem."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(422, "Request body failed validation", extra={"errors": errors})
        self.errors = errors


_AT = re.compile(r" - at `\$([^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `([^`]*)`")
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


def _msgspec_errors(message: str) -> list[dict[str, Any]]:
    """``"Expected `int`, got `str` - at `$.items[1].x`"`` → loc ``["body", "items", 1, "x"]``."""
    loc: list[Any] = ["body"]
    at = _AT.search(message)
    text = message
    if at is not None:
        text = message[: at.start()]
        for name, index in _STEP.findall(at.group(1)):
            loc.append(name if name else (int(index) if index.isdigit() else index))
    missing = _MISSING.match(text)
    if missing is not None:
        loc.append(missing.group(1))
    return [{"loc": loc, "msg": text}]


# -- JSON limits shared by every kind (cheap scans first, exact checks only when needed) --


_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def _too_deep(body: bytes) -> bool:
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False  # the usual case: fewer brackets than the limit, whatever their order
    depth = 0
    for match in _TOKEN.finditer(body):
        char = match.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in (b"]", b"}"):
            depth -= 1
    return False


def _has_nan_token(body: bytes) -> bool:
    """``NaN`` / ``Infinity`` outside strings (pydantic's parser accepts them; JSON does not)."""
    if b"NaN" not in body and b"Infinity" not in body:
        return False
    bare = _STRING.sub(b'""', body)
    return b"NaN" in bare or b"Infinity" in bare


def _check_limits(body: bytes) -> None:
    if not body or body.isspace():
        raise BadRequestError("Request body is empty; expected JSON")
    if _too_deep(body):
        raise BadRequestError(f"JSON nesting is deeper than {MAX_DEPTH} levels")


# -- decoders and encoders (built once per route at compile time) ------------------------------

Decoder = Callable[[bytes], Any]
Encoder = Callable[[Any], bytes]
_decoders: dict[Any, Decoder] = {}
_encoders: dict[Any, Encoder] = {}


def _msgspec_decoder(tp: Any) -> Decoder:
    msgspec = require_msgspec("body=")
    decode = msgspec.json.Decoder(tp).decode
    untyped = msgspec.json.Decoder().decode
    validation_error, decode_error = msgspec.ValidationError, msgspec.DecodeError

    def decode_body(body: bytes) -> Any:
        _check_limits(body)
        try:
            return decode(body)
        except validation_error as exc:
            try:  # a shape error may be met before a syntax error later in the text
                untyped(body)
            except decode_error as syntax:
                raise BadRequestError(f"Invalid JSON body: {syntax}") from None
            raise BodyValidationError(_msgspec_errors(str(exc))) from None
        except decode_error as exc:
            raise BadRequestError(f"Invalid JSON body: {exc}") from None

    return decode_body


def _pydantic_decoder(tp: Any) -> Decoder:
    import pydantic

    item = _item_of(tp)
    validate_json = (
        pydantic.TypeAdapter(tp).validate_json if item is not None else tp.model_validate_json
    )
    validation_error = pydantic.ValidationError

    def decode_body(body: bytes) -> Any:
        _check_limits(body)
        if _has_nan_token(body):
            raise BadRequestError("Invalid JSON body: NaN and Infinity are not JSON")
        try:
            return validate_json(body)
        except validation_error as exc:
            problems = exc.errors(include_url=False, include_context=False, include_input=False)
            for problem in problems:
                if problem["type"] == "json_invalid":
                    raise BadRequestError(f"Invalid JSON body: {problem['msg']}") from None
            raise BodyValidationError(
                [{"loc": ["body", *problem["loc"]], "msg": problem["msg"]} for problem in problems]
            ) from None

    return decode_body


def decoder_for(tp: Any) -> Decoder:
    decoder = _decoders.get(tp)
    if decoder is None:
        kind = model_kind(tp)
        decoder = _pydantic_decoder(tp) if kind == "pydantic" else _msgspec_decoder(tp)
        _decoders[tp] = decoder
    return decoder


def encoder_for(tp: Any) -> Encoder:
    encoder = _encoders.get(tp)
    if encoder is None:
        if model_kind(tp) == "pydantic":
            import pydantic

            encoder = pydantic.TypeAdapter(tp).dump_json
        else:
            encoder = require_msgspec("response=").json.Encoder().encode
        _encoders[tp] = encoder
    return encoder


def _instance_test(tp: Any) -> Callable[[Any], bool] | None:
    """How to recognise a returned value of the ``response=`` type (None: a TypedDict, a dict)."""
    if _item_of(tp) is not None:
        return lambda value: type(value) is list
    if typing.is_typeddict(tp):
        return None  # a plain dict at run time: the usual dict → JSON conversion applies
    return lambda value: isinstance(value, tp)


# -- the step in front of the handler ------------------------------------------------------------


def typed_call(
    call: Callable[[Request], Any], body: Any = None, response: Any = None
) -> Callable[[Request], Any]:
    """``call`` with the body decoded into ``request.validated`` first and/or the
    handler's ``response=`` instance encoded as JSON after."""
    decode = decoder_for(body) if body is not None else None
    is_instance = _instance_test(response) if response is not None else None
    if is_instance is None:
        if decode is None:
            return call

        def call_with_body(request: Request) -> Any:
            request.validated = decode(request.body())
            return call(request)

        return call_with_body

    encode = encoder_for(response)

    def convert(value: Any) -> Any:
        if is_instance(value):
            return Response(encode(value), 200, None, JSON_TYPE)
        if type(value) is tuple and value and is_instance(value[0]):
            return (Response(encode(value[0]), 200, None, JSON_TYPE), *value[1:])
        return value

    def call_typed(request: Request) -> Any:
        if decode is not None:
            request.validated = decode(request.body())
        value = call(request)
        if isinstance(value, Deferred):
            return value.addCallback(convert)
        if inspect.iscoroutine(value):
            return Deferred.fromCoroutine(value).addCallback(convert)
        return convert(value)

    return call_typed
