"""/admin/*: anonymous 401, signed-in non-admins 403, on every route, present and future."""

import re
import uuid

from fastapi.routing import iter_route_contexts

from tests.conftest import client_for
from tests.helpers import make_admin, signed_in


def admin_operations(app) -> list[tuple[str, str]]:
    operations = []
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        if path == "/admin" or path.startswith("/admin/"):
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    concrete = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
                    operations.append((method, concrete))
    return operations


async def test_every_admin_route_is_gated(app):
    operations = admin_operations(app)
    assert len(operations) >= 3  # the walk really found the admin routes
    async with client_for(app) as anonymous, client_for(app) as user:
        await signed_in(user)
        for method, path in operations:
            response = await anonymous.request(method, path, json={})
            assert response.status_code == 401, (method, path)
            response = await user.request(method, path, json={})
            assert response.status_code == 403, (method, path)
            assert response.json()["code"] == "ADMIN_ROLE_REQUIRED"


async def test_an_admin_passes_the_gate(app, client):
    me = await signed_in(client)
    await make_admin(app, me["email"])
    response = await client.get("/admin/users")
    assert response.status_code == 200
    assert response.json()["items"][0]["email"] == me["email"]
