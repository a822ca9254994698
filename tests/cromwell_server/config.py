"""Settings of the Cromwell test server: command-line flags, optionally a JSON file first."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

OUTPUT_MODES = ("s3", "local")


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server needs; secrets stay out of ``repr()``."""

    work_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = field(default=None, repr=False)
    bucket: str = "cromwell-executions"
    prefix: str = ""  # key prefix inside the bucket, e.g. "runs/"
    outputs: str = "s3"  # "s3": outputs uploaded and reported as s3:// URIs; "local": paths
    submit_lag_s: float = 1.0  # status/metadata/query answer 404 this long after a submit
    max_concurrent: int = 4  # workflows running at once; the others stay "Submitted"
    simulate: bool = False
    sim_start_s: float = 0.5  # Submitted -> Running
    sim_run_s: float = 2.0  # Running -> Succeeded/Failed
    sim_fail_fraction: float = 0.0
    sim_abort_s: float = 0.2  # Aborting -> Aborted
    cromwell_version: str = "88-ferry-test"
    miniwdl: str | None = None  # path of the miniwdl executable (default: next to python)
    log_requests: bool = True

    def __post_init__(self) -> None:
        if self.outputs not in OUTPUT_MODES:
            raise ValueError(f"outputs must be one of {', '.join(OUTPUT_MODES)}")
        if not 0.0 <= self.sim_fail_fraction <= 1.0:
            raise ValueError("sim_fail_fraction must be between 0 and 1")
        if self.max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        needs_bucket = not self.simulate and self.outputs == "s3"
        if needs_bucket and not self.s3_endpoint:
            raise ValueError("--s3-endpoint is needed unless --outputs local or --simulate")

    @property
    def records_dir(self) -> Path:
        return self.work_dir / "records"

    @property
    def runs_dir(self) -> Path:
        return self.work_dir / "runs"

    def to_json_dict(self) -> dict[str, Any]:
        """Plain values (paths as text), secrets included: for a private config file."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["work_dir"] = str(self.work_dir)
        return values

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> ServerConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(unknown)}")
        values = dict(data)
        values["work_dir"] = Path(values["work_dir"])
        return cls(**values)


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cromwell_server",
        description="A Cromwell-compatible REST server for tests: runs WDL with miniwdl.",
    )
    parser.add_argument("--config", type=Path, help="JSON file with settings (flags override)")
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--s3-endpoint")
    parser.add_argument("--s3-region")
    parser.add_argument("--bucket")
    parser.add_argument("--prefix")
    parser.add_argument("--outputs", choices=OUTPUT_MODES)
    parser.add_argument("--submit-lag", dest="submit_lag_s", type=float)
    parser.add_argument("--max-concurrent", type=int)
    parser.add_argument("--simulate", action="store_const", const=True)
    parser.add_argument("--sim-start", dest="sim_start_s", type=float)
    parser.add_argument("--sim-run", dest="sim_run_s", type=float)
    parser.add_argument("--sim-fail-fraction", type=float)
    parser.add_argument("--cromwell-version")
    parser.add_argument("--miniwdl")
    parser.add_argument("--quiet", dest="log_requests", action="store_const", const=False)
    return parser


def config_from_argv(argv: list[str] | None = None) -> ServerConfig:
    """Settings from ``--config FILE`` (if any), then flags; S3 keys also from AWS_* variables."""
    args = vars(_argument_parser().parse_args(argv))
    config_file = args.pop("config")
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(json.loads(config_file.read_text()))
    values.update({key: value for key, value in args.items() if value is not None})
    values.setdefault("s3_access_key_id", os.environ.get("AWS_ACCESS_KEY_ID"))
    values.setdefault("s3_secret_access_key", os.environ.get("AWS_SECRET_ACCESS_KEY"))
    if "work_dir" not in values:
        raise SystemExit("--work-dir (or work_dir in --config) is required")
    return ServerConfig.from_json_dict(values)
