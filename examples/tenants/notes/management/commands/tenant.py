from django.core.management.base import BaseCommand, CommandError
from tenants_site import tenancy


class Command(BaseCommand):
    help = "Create or delete tenants' databases while the server runs."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["add", "remove"])
        parser.add_argument("names", nargs="+")

    def handle(self, action, names, **options):
        for name in names:
            try:
                if action == "add":
                    tenancy.create(name)
                else:
                    tenancy.delete(name)
            except ValueError as exc:
                raise CommandError(exc)
            done = "Created" if action == "add" else "Deleted"
            self.stdout.write(f"{done} tenant {name!r}.")
