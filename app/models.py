"""Imports every model module so `Base.metadata` is complete (for Alembic and tests)."""


def load_all_models() -> None:
    import app.auth.models  # noqa: PLC0415
    import app.confirmation.models  # noqa: PLC0415
    import app.newsletters.models  # noqa: PLC0415
    import app.services.email.outbox  # noqa: PLC0415
    import app.transactions.models  # noqa: PLC0415
    import app.users.models  # noqa: F401, PLC0415
