"""Add an operation to the catalog from a folder or a git repository."""

from __future__ import annotations

from typing import IO, Any, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from rich.console import Console

from api.models import User
from operations.ingestion import IngestionError, ingest_operation
from operations.models import ImageOrigin, OperationMode
from operations.spec import SpecError


def _stream(wrapper: OutputWrapper) -> IO[str]:
    """The stream under Django's OutputWrapper (which would add a newline to every write)."""
    return cast(IO[str], getattr(wrapper, "_out", wrapper))


class Command(BaseCommand):
    help = (
        "Add an operation from a folder, a local git repository or a git URL (file://, https://, "
        "ssh://): a Docker operation (spec + Dockerfile, image built) or a WDL workflow (.wdl "
        "files + optional metadata, checked with miniwdl). Git sources are checked out at "
        "--commit (default: the default branch's HEAD). Adding the same name and revision again "
        "changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="A folder, a git repository path or a git URL.")
        parser.add_argument("--commit", help="The commit (sha, branch or tag) to check out.")
        parser.add_argument("--added-by", help="Email of the user recorded as adding it.")

    def handle(self, *args: Any, **opts: Any) -> None:
        console = Console(file=_stream(self.stdout), highlight=False, soft_wrap=True)
        added_by = None
        if opts.get("added_by"):
            added_by = User.objects.filter(email__iexact=opts["added_by"]).first()
            if added_by is None:
                raise CommandError(f"no user with the email {opts['added_by']}")
        try:
            with console.status("Adding the operation…") as status:

                def progress(message: str) -> None:
                    status.update(message)
                    if not message.startswith("Step "):
                        console.print(f"  {message}", markup=False)
                    else:
                        console.print(f"    {message}", style="dim", markup=False)

                operation, created = ingest_operation(
                    opts["source"], commit=opts.get("commit"), added_by=added_by, progress=progress
                )
        except SpecError as exc:
            raise CommandError(exc.describe()) from None
        except IngestionError as exc:
            problems = exc.details.get("workflow", []) if exc.code == "invalid_workflow" else []
            listed = "".join(f"\n  {problem}" for problem in problems) if len(problems) > 1 else ""
            raise CommandError(f"[{exc.code}] {exc.message}{listed}") from None
        summary = f"{operation.name} {operation.version} (revision {operation.revision[:12]})"
        if created:
            what = (
                f"a WDL workflow ({operation.spec.get('workflow')})"
                if operation.mode == OperationMode.WDL
                else operation.image
            )
            if operation.image_origin == ImageOrigin.FOUND:
                what += " (found on the engine under WebMEV's name for this commit; not built)"
            console.print(f"Added {summary} as {what} — id {operation.id}", style="green")
        else:
            console.print(f"{summary} was already added — id {operation.id}", style="yellow")
