"""Output paths of a WebMEV-style run: the execution dir is mounted at its own host path, so
outputs.json names absolute host-equal paths; nothing outside that dir (or in Ferry's .ferry)
is ever reported, however the path or a symlink climbs."""

from __future__ import annotations

from pathlib import Path

import pytest

from executors.docker import OutputPathError, resolve_output_path


@pytest.fixture
def exec_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "work" / "docker" / "job"
    (folder / ".ferry").mkdir(parents=True)
    (folder / "sub").mkdir()
    (folder / "out.tsv").write_text("a\n")
    (folder / "sub" / "deep.tsv").write_text("b\n")
    (folder / "link.tsv").symlink_to("sub/deep.tsv")
    (folder / "abs-link.tsv").symlink_to(folder / "out.tsv")
    (folder / "escape.tsv").symlink_to("/etc/passwd")
    (folder / "up.tsv").symlink_to("../../secret.tsv")
    (tmp_path / "work" / "secret.tsv").write_text("no\n")
    (folder / ".ferry" / "state.json").write_text("{}")
    return folder


@pytest.mark.parametrize(
    ("ref", "found"),
    [
        ("{dir}/out.tsv", "out.tsv"),
        ("out.tsv", "out.tsv"),  # relative: to the execution dir
        ("{dir}/sub/../sub/deep.tsv", "sub/deep.tsv"),
        ("{dir}/link.tsv", "sub/deep.tsv"),
        ("{dir}/abs-link.tsv", "out.tsv"),  # an absolute target is a container path: the same
    ],
)
def test_paths_inside_the_execution_dir_are_found(exec_dir: Path, ref: str, found: str) -> None:
    path = resolve_output_path(exec_dir, ref.format(dir=exec_dir), str(exec_dir))
    assert path == exec_dir / found


@pytest.mark.parametrize(
    ("ref", "kind"),
    [
        ("/etc/passwd", "outside"),
        ("{dir}/../secret.tsv", "outside"),
        ("../secret.tsv", "outside"),
        ("{dir}/escape.tsv", "outside"),
        ("{dir}/up.tsv", "outside"),
        ("{dir}/.ferry/state.json", "outside"),
        ("{dir}", "not_file"),
        ("{dir}/sub", "not_file"),
        ("{dir}/nothing.tsv", "missing"),
        ("/work/out.tsv", "outside"),  # Ferry's own mount point means nothing here
    ],
)
def test_paths_leaving_the_execution_dir_are_refused(exec_dir: Path, ref: str, kind: str) -> None:
    with pytest.raises(OutputPathError) as info:
        resolve_output_path(exec_dir, ref.format(dir=exec_dir), str(exec_dir))
    assert info.value.kind == kind


def test_ferry_runs_keep_work_as_their_mount_point(exec_dir: Path) -> None:
    assert resolve_output_path(exec_dir, "/work/out.tsv") == exec_dir / "out.tsv"
    with pytest.raises(OutputPathError):
        resolve_output_path(exec_dir, f"{exec_dir}/out.tsv")
