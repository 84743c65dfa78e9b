"""`python -m app newsletter send`, run as staff run it: a subprocess on the test's
database, delivering to a real SMTP server."""

from tests.cli.test_outbox import run, smtp_env
from tests.newsletters.helpers import add_users


async def test_send_from_the_shell_queues_and_delivers_to_opted_in_users(
    app, database_url, smtp_server, tmp_path
):
    readers = await add_users(app, 3)
    await add_users(app, 2, opt_in=False, prefix="quiet")
    html, text = tmp_path / "body.html", tmp_path / "body.txt"
    html.write_text("<p>{{ name }}, новинки недели</p>", encoding="utf-8")
    text.write_text("{{ name }}, новинки недели", encoding="utf-8")

    done = run(
        smtp_env(database_url, smtp_server),
        "newsletter",
        "send",
        "--subject",
        "Новинки",
        "--html-file",
        str(html),
        "--text-file",
        str(text),
    )
    assert done.returncode == 0, done.stderr
    assert "3 emails queued; sent 3, failed 0, withdrawn 0" in done.stdout
    assert sorted(e.rcpt_tos[0] for e in smtp_server.envelopes) == sorted(
        r["email"] for r in readers
    )
    bodies = [m.get_body(("plain",)).get_content() for m in smtp_server.messages]
    assert sorted(b.split(",")[0] for b in bodies) == sorted(r["name"] for r in readers)


async def test_bad_content_is_refused_before_anything_is_queued(
    app, database_url, smtp_server, tmp_path
):
    await add_users(app, 1)
    html, text = tmp_path / "body.html", tmp_path / "body.txt"
    html.write_text("<p>{{ nmae }}</p>", encoding="utf-8")
    text.write_text("x", encoding="utf-8")
    env = smtp_env(database_url, smtp_server)
    refused = run(
        env,
        "newsletter",
        "send",
        "--subject",
        "S",
        "--html-file",
        str(html),
        "--text-file",
        str(text),
    )
    assert refused.returncode == 2
    assert "'nmae' is undefined" in refused.stderr
    missing = run(
        env,
        "newsletter",
        "send",
        "--subject",
        "S",
        "--html-file",
        str(tmp_path / "absent"),
        "--text-file",
        str(text),
    )
    assert missing.returncode == 2 and "No such file" in missing.stderr
    queued_only = run(
        env,
        "newsletter",
        "send",
        "--subject",
        "S",
        "--html-file",
        str(text),
        "--text-file",
        str(text),
        "--no-deliver",
    )
    assert queued_only.returncode == 0, queued_only.stderr
    assert queued_only.stdout.strip().endswith("1 emails queued")
    assert smtp_server.messages == []
