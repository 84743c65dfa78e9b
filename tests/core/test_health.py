from app.main import close_app, create_app
from tests.conftest import client_for


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_the_database(client, make_settings, tmp_path):
    assert (await client.get("/readyz")).status_code == 200
    app = create_app(make_settings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/missing/x.db"))
    async with client_for(app) as broken:
        response = await broken.get("/readyz")
    await close_app(app)
    assert response.status_code == 503
    assert response.json()["code"] == "NOT_READY"
