"""Where a finished run's files are reported: uploaded to the S3 bucket (``s3://`` URIs, the
way Cromwell's cloud backends report them) or left as absolute local paths."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from .storage import S3Transfers, split_s3_uri


class LocalPaths:
    """``--outputs local``: a file is reported by its absolute (resolved) path."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir.resolve()
        self.output_files: list[Path] = []

    def locate(self, path: Path) -> str:
        return str(path.resolve())

    def locate_output(self, path: str, is_directory: bool) -> str:
        local = Path(path).resolve()
        if local.is_file():
            self.output_files.append(local)
        return str(local)

    def copy_final_outputs(self, destination: str, relative: bool) -> None:
        """``final_workflow_outputs_dir`` for a local folder."""
        if destination.startswith("s3://"):
            raise ValueError("final_workflow_outputs_dir must be a local folder with local outputs")
        for local in self.output_files:
            inside = local.is_relative_to(self.run_dir)
            name = local.relative_to(self.run_dir) if inside and not relative else local.name
            target = Path(destination) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, target)


class S3Publisher:
    """Uploads files of one workflow under ``<prefix><workflow-name>/<id>/`` on first use.

    Keys mirror the run directory (``call-t/work/out.txt``, ``call-t/stderr.txt``); files
    from elsewhere in the workflow's folder keep their relative path; others go under
    ``outputs/``.
    """

    def __init__(
        self, transfers: S3Transfers, workflow_base: str, run_dir: Path, workflow_dir: Path
    ) -> None:
        self.transfers = transfers
        self.workflow_base = workflow_base.strip("/")  # "<workflow-name>/<id>"
        self.key_base = f"{transfers.prefix}{self.workflow_base}"
        self.run_dir = run_dir.resolve()
        self.workflow_dir = workflow_dir.resolve()
        self._uploaded: dict[Path, str] = {}
        self._lock = threading.Lock()
        self.output_files: list[tuple[Path, str]] = []  # workflow outputs: (local, key)

    def key_for(self, path: Path) -> str:
        resolved = path.resolve()
        for root in (self.run_dir, self.workflow_dir):
            if resolved.is_relative_to(root):
                return f"{self.key_base}/{resolved.relative_to(root).as_posix()}"
        return f"{self.key_base}/outputs/{resolved.name}"

    def locate(self, path: Path) -> str:
        """The s3:// URI of ``path`` (uploaded now if it is a file not yet uploaded)."""
        resolved = path.resolve()
        key = self.key_for(resolved)
        if resolved.is_dir():
            return self.transfers.uri(key) + "/"
        if not resolved.is_file():
            return self.transfers.uri(key)
        with self._lock:
            if resolved not in self._uploaded:
                self._uploaded[resolved] = self.transfers.upload(resolved, key)
            return self._uploaded[resolved]

    def locate_output(self, path: str, is_directory: bool) -> str:
        """A workflow output: uploaded (all files of a directory) and remembered."""
        local = Path(path).resolve()
        if is_directory or local.is_dir():
            for item in sorted(p for p in local.rglob("*") if p.is_file()):
                self.output_files.append((item, self.key_for(item)))
                self.locate(item)
            return self.transfers.uri(self.key_for(local)) + "/"
        self.output_files.append((local, self.key_for(local)))
        return self.locate(local)

    def copy_final_outputs(self, destination: str, relative: bool) -> None:
        """Cromwell's ``final_workflow_outputs_dir`` (``use_relative_output_paths``)."""
        for local, key in self.output_files:
            name = local.name if relative else key.removeprefix(self.transfers.prefix)
            if destination.startswith("s3://"):
                bucket, prefix = split_s3_uri(destination.rstrip("/") + "/")
                self.transfers.upload(local, f"{prefix}{name}", bucket=bucket)
            else:
                target = Path(destination) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(local, target)
