"""Add Ferry's example operations (used by `make run`); running it again changes nothing."""

from __future__ import annotations

from typing import IO, Any, cast

import docker
import docker.errors
import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from rich.console import Console

from operations.examples import BaseImageError, ensure_base_image, example_folders
from operations.ingestion import IngestionError, ingest_operation
from operations.spec import SpecError


def _stream(wrapper: OutputWrapper) -> IO[str]:
    """The stream under Django's OutputWrapper (which would add a newline to every write)."""
    return cast(IO[str], getattr(wrapper, "_out", wrapper))


class Command(BaseCommand):
    help = (
        "Build the examples' base image (ferry/busybox:latest, from the local static busybox) "
        "if it is missing, then add every example operation. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-docker",
            action="store_true",
            help="Skip with a warning (exit 0) when the Docker engine can't be reached.",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        console = Console(file=_stream(self.stdout), highlight=False, soft_wrap=True)
        try:
            client = docker.from_env()
            client.ping()
        except (docker.errors.DockerException, requests.RequestException) as exc:
            message = f"the Docker engine can't be reached ({exc}); example operations not added"
            if opts["if_docker"]:
                console.print(f"Warning: {message}", style="yellow", markup=False)
                return
            raise CommandError(message) from None
        try:
            with console.status("Checking the base image ferry/busybox:latest…"):
                ensure_base_image(client)
        except BaseImageError as exc:
            raise CommandError(str(exc)) from None
        added = 0
        for folder in example_folders():
            try:
                with console.status(f"Adding {folder.name}…") as status:
                    operation, created = ingest_operation(str(folder), progress=status.update)
            except SpecError as exc:
                raise CommandError(exc.describe()) from None
            except IngestionError as exc:
                raise CommandError(f"{folder.name}: [{exc.code}] {exc.message}") from None
            summary = f"{operation.name} {operation.version} ({operation.image})"
            if created:
                added += 1
                console.print(f"Added {summary}", style="green", markup=False)
            else:
                console.print(f"{summary} already added", markup=False)
        console.print(f"Example operations ready ({added} added).")
