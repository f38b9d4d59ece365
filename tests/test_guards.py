"""Guards: verdicts, Role/Permission, composites, app/blueprint guards, fail closed (SPEC §2.11)."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import fail, succeed
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, Blueprint, JwtConfig
from cello_twisted.guards import (
    And,
    Authenticated,
    ForbiddenError,
    GuardError,
    Not,
    Or,
    Permission,
    PermissionGuard,
    Role,
    RoleGuard,
    UnauthorizedError,
)
from tests._support.auth import SECRET, clock_at


def app_with(user: Any, *guards: Any) -> Any:
    app = App()

    @app.middleware
    def set_user(request, call_next):  # type: ignore[no-untyped-def]
        if user is not None:
            request.context["user"] = user
        return call_next(request)

    @app.get("/x", guards=list(guards))
    def x(request: Any) -> str:
        return "ok"

    return app.test_client()


def status(user: Any, *guards: Any) -> tuple[int, Any]:
    response = app_with(user, *guards).get("/x")
    return response.status_code, response.json().get(
        "detail"
    ) if response.status_code != 200 else None


class GuardTests(SynchronousTestCase):
    def test_verdicts(self) -> None:
        """§2.11 r1: True/None pass; False → 403 Access denied; str → 403 with that detail."""
        self.assertEqual(status(None, lambda r: True), (200, None))
        self.assertEqual(status(None, lambda r: None), (200, None))
        self.assertEqual(status(None, lambda r: False), (403, "Access denied"))
        self.assertEqual(status(None, lambda r: "Nope"), (403, "Nope"))

    def test_raised_guard_error_status(self) -> None:
        """§2.11 r1: a raised GuardError uses its status_code."""

        def teapot(request: Any) -> None:
            raise GuardError("short and stout", status_code=418)

        self.assertEqual(status(None, teapot), (418, "short and stout"))

    def test_async_and_deferred_guards(self) -> None:
        """§2.11 r1: guards may be async or return Deferreds."""

        async def allow(request: Any) -> bool:
            return True

        async def deny(request: Any) -> bool:
            return False

        self.assertEqual(status(None, allow), (200, None))
        self.assertEqual(status(None, deny), (403, "Access denied"))
        self.assertEqual(status(None, lambda r: succeed("Later no")), (403, "Later no"))
        self.assertEqual(
            status(None, lambda r: fail(UnauthorizedError())), (401, "Authentication required")
        )

    def test_order_stops_at_first_failure(self) -> None:
        """§2.11 r2: all must pass, in order, stopping at the first failure."""
        calls: list[str] = []

        def first(request: Any) -> bool:
            calls.append("first")
            return False

        def second(request: Any) -> bool:
            calls.append("second")
            return True

        self.assertEqual(status(None, first, second)[0], 403)
        self.assertEqual(calls, ["first"])

    def test_authenticated(self) -> None:
        """§2.11 r3: missing/falsy user → 401."""
        self.assertEqual(status(None, Authenticated())[0], 401)
        self.assertEqual(status({}, Authenticated())[0], 401)
        self.assertEqual(status({"sub": "u"}, Authenticated())[0], 200)

    def test_role(self) -> None:
        """§2.11 r4: any role by default, all with require_all; str = one item; role fallback; no user 401."""
        self.assertEqual(status({"roles": ["editor"]}, Role(["admin", "editor"]))[0], 200)
        self.assertEqual(status({"roles": "admin"}, Role(["admin"]))[0], 200)
        self.assertEqual(status({"role": "admin"}, Role(["admin"]))[0], 200)
        self.assertEqual(
            status({"roles": ["user"]}, Role(["admin", "editor"])),
            (403, "Requires one of roles: admin, editor"),
        )
        self.assertEqual(
            status({"roles": ["admin"]}, Role(["admin", "editor"], require_all=True)),
            (403, "Missing required roles: editor"),
        )
        self.assertEqual(status(None, Role(["admin"]))[0], 401)
        self.assertIs(RoleGuard, Role)

    def test_permission(self) -> None:
        """§2.11 r4: all permissions by default, any with require_all=False."""
        self.assertEqual(
            status({"permissions": ["read", "write"]}, Permission(["read", "write"]))[0], 200
        )
        self.assertEqual(
            status({"permissions": ["read"]}, Permission(["read", "write"])),
            (403, "Missing required permissions: write"),
        )
        self.assertEqual(
            status({"permissions": ["read"]}, Permission(["read", "write"], require_all=False))[0],
            200,
        )
        self.assertEqual(status({"perms": ["x"]}, Permission(["x"], perm_key="perms"))[0], 200)
        self.assertIs(PermissionGuard, Permission)

    def test_composites(self) -> None:
        """§2.11 r5: And fails with the first failure; Or passes on one, else last error; Not inverts."""
        admin = Role(["admin"])
        writer = Permission(["write"])
        user = {"roles": ["admin"], "permissions": ["read"]}
        self.assertEqual(
            status(user, And(admin, writer)), (403, "Missing required permissions: write")
        )
        self.assertEqual(status(user, And([admin, lambda r: True]))[0], 200)
        self.assertEqual(status(user, Or(writer, admin))[0], 200)
        self.assertEqual(status(user, Or(lambda r: "first", lambda r: "last")), (403, "last"))
        self.assertEqual(status(user, Not(writer))[0], 200)
        self.assertEqual(status(user, Not(admin)), (403, "Access denied"))
        self.assertEqual(status(None, Not(Authenticated()))[0], 200)

    def test_async_composites(self) -> None:
        """§2.11 r5: composites work with async members."""

        async def no(request: Any) -> str:
            return "async no"

        async def yes(request: Any) -> bool:
            return True

        self.assertEqual(status(None, Or(no, yes))[0], 200)
        self.assertEqual(status(None, Or(no, no)), (403, "async no"))
        self.assertEqual(status(None, Not(no))[0], 200)
        self.assertEqual(status(None, Not(yes))[0], 403)
        self.assertEqual(status(None, And(yes, no)), (403, "async no"))

    def test_fail_closed(self) -> None:
        """§2.11 r6: any other exception → 403 Access denied and logged (sync and async)."""

        def crash(request: Any) -> bool:
            raise KeyError("secret-internal")

        async def async_crash(request: Any) -> bool:
            raise KeyError("secret-internal")

        for guard in (crash, async_crash, Or(crash), And(crash)):
            code, detail = status(None, guard)
            self.assertEqual((code, detail), (403, "Access denied"), guard)
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 4)

    def test_not_of_crashing_guard_fails_closed(self) -> None:
        """§2.11 r6: Not(crashing guard) refuses; a crash is never turned into a pass."""

        def crash(request: Any) -> bool:
            raise KeyError("x")

        async def async_crash(request: Any) -> bool:
            raise KeyError("x")

        self.assertEqual(status(None, Not(crash)), (403, "Access denied"))
        self.assertEqual(status(None, Not(async_crash)), (403, "Access denied"))
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 2)

    def test_construction_errors(self) -> None:
        """§2.11 errors: empty roles/permissions → ValueError; Not(non-callable) → TypeError; empty And/Or refused."""
        for make in (lambda: Role([]), lambda: Permission([]), lambda: And(), lambda: Or([])):
            with self.assertRaises(ValueError):
                make()
        with self.assertRaises(TypeError):
            Not("admin")  # type: ignore[arg-type]

    def test_app_and_blueprint_guards_order(self) -> None:
        """§2.1 r10 / §2.4 r3: app guards, then outer…inner blueprint guards, then route guards."""
        calls: list[str] = []

        def mark(name: str, verdict: Any = True) -> Any:
            def guard(request: Any) -> Any:
                calls.append(name)
                return verdict

            return guard

        app = App()
        app.add_guard(mark("app"))
        outer = Blueprint("/outer", guards=[mark("outer")])
        inner = Blueprint("/inner", guards=[mark("inner", "inner says no")])
        outer.register(inner)
        app.register_blueprint(outer)

        @inner.get("/x", guards=[mark("route")])
        def x(request: Any) -> str:
            return "ok"

        response = app.test_client().get("/outer/inner/x")
        self.assertEqual((response.status_code, response.json()["detail"]), (403, "inner says no"))
        self.assertEqual(calls, ["app", "outer", "inner"])

    def test_exception_handler_overrides(self) -> None:
        """§2.11 r7: @app.exception_handler(GuardError) overrides the default body."""
        app = App()

        @app.exception_handler(GuardError)
        def handle(request: Any, exc: GuardError) -> tuple[dict, int]:
            return {"custom": exc.message}, exc.status_code

        @app.get("/x", guards=[Role(["admin"])])
        def x(request: Any) -> str:
            return "ok"

        response = app.test_client().get("/x")
        self.assertEqual(
            (response.status_code, response.json()), (401, {"custom": "Authentication required"})
        )

    def test_guard_401_has_www_authenticate(self) -> None:
        """§2.10 r17: a guard's 401 carries WWW-Authenticate with the JWT realm."""
        response = app_with(None, Authenticated()).get("/x")
        self.assertEqual(response.headers.get("www-authenticate"), 'Bearer realm="api"')

    def test_roles_from_jwt_claims(self) -> None:
        """§2.11 r7 / §2.10 r12: with JWT on, Role reads the token's roles."""
        app = App(clock=clock_at())
        app.enable_jwt(JwtConfig(secret=SECRET))

        @app.get("/admin", guards=[Role(["admin"])])
        def admin(request: Any) -> str:
            return "ok"

        client = app.test_client()
        admin_token = app.jwt.create_token({"sub": "a", "roles": ["admin"]})
        user_token = app.jwt.create_token({"sub": "u", "roles": ["user"]})
        self.assertEqual(
            client.get("/admin", headers={"Authorization": "Bearer " + admin_token}).status_code,
            200,
        )
        self.assertEqual(
            client.get("/admin", headers={"Authorization": "Bearer " + user_token}).status_code, 403
        )
        self.assertEqual(client.get("/admin").status_code, 401)

    def test_forbidden_error_type(self) -> None:
        """§2.11: ForbiddenError is a 403 GuardError."""
        self.assertEqual(ForbiddenError("x").status_code, 403)
