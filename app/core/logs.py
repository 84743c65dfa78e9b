"""The app's own log lines (logger "app" and below) reach stderr at INFO.

uvicorn configures only its own loggers; without this, the console email backend's
messages (INFO on "app.email": the codes a developer needs under `make run`) and the
outbox's warnings went nowhere visible. Records still propagate to the root logger, so
pytest's caplog and any handler a deployment adds see them too.
"""

import logging

FORMAT = "%(levelname)s:     %(name)s: %(message)s"


def configure_logging(*, access_log: bool = True) -> None:
    # ACCESS_LOG, however uvicorn was started (`make run`, `python -m app serve`).
    logging.getLogger("uvicorn.access").disabled = not access_log
    logger = logging.getLogger("app")
    if any(getattr(h, "_shop_app_handler", False) for h in logger.handlers):
        return  # once per process, however many apps are built
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler._shop_app_handler = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
