"""Write .env from .env.example with freshly generated secrets (never overwrites)."""

import secrets
import sys
from pathlib import Path


def main(example: str, target: str) -> int:
    out = Path(target)
    if out.exists():
        print(f"{target} exists, left as it is")
        return 0
    lines = []
    for line in Path(example).read_text(encoding="utf-8").splitlines():
        if line.startswith("SECRET_KEY="):
            line = f"SECRET_KEY={secrets.token_urlsafe(48)}"
        elif line.startswith("POSTGRES_PASSWORD="):
            line = f"POSTGRES_PASSWORD={secrets.token_urlsafe(24)}"
        lines.append(line)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.chmod(0o600)
    print(f"wrote {target} with a new SECRET_KEY and POSTGRES_PASSWORD")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
