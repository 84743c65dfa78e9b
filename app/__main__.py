"""Command line: `python -m app create-admin --email E --password P [--name N] [--phone P]`."""

import argparse
import asyncio
import sys

from fastapi_users import exceptions
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from app.auth import sessions
from app.core.config import get_settings
from app.core.db import create_engine, create_sessionmaker
from app.core.security import PasswordHasher
from app.types.enums import UserRole
from app.users.manager import check_password
from app.users.models import User
from app.users.schemas import Email, Name, Phone


class AdminCreate(BaseModel):
    email: Email
    name: Name
    phone: Phone | None = None


async def create_admin(email: str, password: str, name: str, phone: str | None) -> str:
    """Create an admin, or promote an existing user. Idempotent."""
    settings = get_settings()
    engine = create_engine(settings.DATABASE_URL)
    try:
        async with create_sessionmaker(engine)() as db, db.begin():
            user = await db.scalar(select(User).where(User.email == email.strip().lower()))
            if user is not None:
                inactive = "" if user.is_active else " (the account is deactivated)"
                if user.role == UserRole.ADMIN:
                    return f"{user.email} is already an admin{inactive}"
                user.role = UserRole.ADMIN
                await sessions.revoke_user_sessions(db, user.id)  # a role change ends them
                return f"{user.email} promoted to admin{inactive}; their sessions were ended"
            data = AdminCreate(email=email, name=name, phone=phone)
            check_password(password, data.email)
            hashed = await PasswordHasher().hash(password)
            db.add(
                User(
                    email=data.email,
                    hashed_password=hashed,
                    name=data.name,
                    phone=data.phone,
                    role=UserRole.ADMIN,
                    is_verified=True,
                )
            )
            return f"{data.email} created as admin"
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app")
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("create-admin", help="create an admin or promote a user")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    admin.add_argument("--name", default="Администратор")
    admin.add_argument("--phone", default=None)
    args = parser.parse_args(argv)

    try:
        message = asyncio.run(create_admin(args.email, args.password, args.name, args.phone))
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        print(f"error: invalid {fields}", file=sys.stderr)
        return 2
    except exceptions.InvalidPasswordException as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return 2
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
