"""The served module (app.main, what `uvicorn app.main:app` and `python -m app serve`
import) freezes what it built, so that the garbage collector's full collections skip the
app's own objects: each of them cost a 60-70 ms stop of the event loop (app/main.py)."""

import gc

import app.main


def test_importing_the_served_app_freezes_what_was_built():
    assert app.main.app is not None
    assert gc.get_freeze_count() > 10_000  # the modules, routes and models, at least
