"""Create the demo superuser once and print its credentials on every start."""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


def password_file() -> Path:
    """Where the demo keeps the password it made (next to the SQLite database, git-ignored under var/)."""
    return Path(settings.BASE_DIR) / "var" / "demo_admin_password"


class Command(BaseCommand):
    help = (
        "Create the demo superuser (a random password, kept in var/demo_admin_password) and print its "
        "credentials; later runs keep the password and print it again. For demos only."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default=None, help="Set this password (default: keep, or a new random one).")
        parser.add_argument("--reset", action="store_true", help="Set a new random password.")

    def handle(self, *args, **options) -> None:
        user, created = get_user_model().objects.get_or_create(
            username=options["username"], defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = user.is_active = True
        stored = password_file()
        kept = stored.read_text().strip() if stored.exists() else ""
        password = options["password"]
        if password is None and not options["reset"] and not created and kept and user.check_password(kept):
            user.save()
            verb = "kept"
            password = kept
        else:
            password = password or secrets.token_urlsafe(9)
            user.set_password(password)
            user.save()
            stored.parent.mkdir(parents=True, exist_ok=True)
            stored.write_text(password + "\n")
            stored.chmod(0o600)
            verb = "created" if created else "reset"
        line = f"Demo admin {verb}: username={user.username} password={password}"
        self.stdout.write(self.style.SUCCESS(f"{'=' * len(line)}\n{line}\n{'=' * len(line)}"))
