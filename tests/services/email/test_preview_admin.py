"""The preview as the app serves it: under /admin, behind the role gate."""

from app.services.email.samples import SAMPLES
from tests.helpers import make_admin, signed_in

PATH = "/admin/emails/preview/confirmation_code"


async def test_staff_see_the_rendered_email_others_do_not(app, client):
    assert (await client.get(PATH)).status_code == 401
    user = await signed_in(client)
    forbidden = await client.get(PATH)
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "ADMIN_ROLE_REQUIRED")

    await make_admin(app, user["email"])
    for locale, word in (("ru", "Подтвердите"), ("en", "Confirm")):
        page = await client.get(PATH, params={"locale": locale})
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert SAMPLES["confirmation_code"]["code"] in page.text
        assert word in page.text
    missing = await client.get("/admin/emails/preview/nope")
    assert (missing.status_code, missing.json()["code"]) == (404, "EMAIL_TEMPLATE_NOT_FOUND")
