"""Which executors a WDL operation's jobs may go to, besides its mode's routing: a draft-2
document of one task never goes to Cromwell (Cromwell runs a lone task only from WDL 1.0 on);
an operation only Cromwell accepts goes only to a Cromwell server taking jobs. Both refusals are
4xx naming why; a workflow womtool would refuse is added with a warning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.exceptions import ApplicationError
from operations.ingestion import IngestionError, ingest_operation
from operations.models import CROMWELL_ANY, CromwellServer, ServerState
from operations.services import executor_alias_for
from tests.operations_fixtures import make_wdl_operation

pytestmark = pytest.mark.django_db

LONE_DRAFT2 = """task shout {
  String word
  command { echo ${word} }
  output { String loud = read_string(stdout()) }
}
"""
LONE_1_0 = """version 1.0

task shout {
  input {
    String word
  }
  command <<< echo ~{word} >>>
  output {
    String loud = read_string(stdout())
  }
}
"""
TABS_AND_SPACES = "version 1.0\n\nworkflow w {\n  call greet\n}\n\ntask greet {\n  command <<<\n\techo one\n    echo two\n  >>>\n}\n"


@pytest.fixture(autouse=True)
def var_dir(tmp_path: Path, settings: Any) -> Path:
    settings.FERRY_VAR_DIR = tmp_path / "var"
    return Path(settings.FERRY_VAR_DIR)


def _operation(tmp_path: Path, name: str, text: str) -> Any:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "main.wdl").write_text(text)
    return make_wdl_operation(folder)


def _server(name: str, state: str = ServerState.ACTIVE) -> str:
    return CromwellServer.objects.create(
        name=name, url="http://127.0.0.1:9", state=state
    ).executor_alias


def test_a_draft2_lone_task_is_never_sent_to_cromwell(tmp_path: Path, settings: Any) -> None:
    alias = _server("lone")
    draft2 = _operation(tmp_path, "draft2", LONE_DRAFT2)
    assert draft2.spec["wdl"]["task"] is True
    with pytest.raises(ApplicationError) as refused:
        executor_alias_for(draft2, alias)
    assert refused.value.status_code == 400
    assert refused.value.code == "executor_not_allowed"
    assert "only from WDL 1.0" in refused.value.message
    settings.EXECUTOR_ROUTING = {**settings.EXECUTOR_ROUTING, "wdl": alias}  # routed there too
    with pytest.raises(ApplicationError):
        executor_alias_for(draft2, None)
    assert executor_alias_for(draft2, "local-miniwdl") == "local-miniwdl"
    # WDL 1.0: Cromwell runs a task by itself.
    assert executor_alias_for(_operation(tmp_path, "v1", LONE_1_0), alias) == alias


def test_an_operation_only_cromwell_accepts_goes_only_to_an_active_cromwell(
    tmp_path: Path,
) -> None:
    operation = _operation(tmp_path, "v1", LONE_1_0)
    operation.executors = [CROMWELL_ANY]
    operation.spec["wdl"].update(miniwdl_refuses=["main.wdl:3:3: unexpected keyword left"])
    operation.spec["wdl"]["accepted_by"] = ["cromwell:b"]
    operation.save()
    with pytest.raises(ApplicationError) as none:
        executor_alias_for(operation, None)
    assert none.value.status_code == 409
    assert none.value.code == "no_cromwell_server"
    _server("a")
    _server("b")
    _server("c", ServerState.DRAINING)
    assert executor_alias_for(operation, None) == "cromwell:b"  # the one that accepted it first
    assert executor_alias_for(operation, "cromwell:a") == "cromwell:a"
    with pytest.raises(ApplicationError) as miniwdl:
        executor_alias_for(operation, "local-miniwdl")
    assert miniwdl.value.status_code == 400
    assert "unexpected keyword left" in miniwdl.value.message
    assert "choose cromwell:b, cromwell:a" in miniwdl.value.message
    with pytest.raises(ApplicationError) as draining:
        executor_alias_for(operation, "cromwell:c")
    assert draining.value.status_code == 409


def test_what_womtool_would_refuse_is_added_with_a_warning(tmp_path: Path) -> None:
    operation = _operation(tmp_path, "tabs", TABS_AND_SPACES)
    (warning,) = operation.spec["wdl"]["womtool_warnings"]
    assert warning.startswith("main.wdl:8:3: womtool refuses this command of task greet")
    assert f"Warning: {warning}" in operation.build_log


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("task a {\n  command {}\n}\ntask b {\n  command {}\n}\n", "is a task library"),
        ('version 1.0\nimport "https://example.org/a.wdl" as a\nworkflow w {}\n', "not URLs"),
        (
            "version 1.2\nworkflow w {\n  input {\n    Directory d\n  }\n}\n",
            "type Directory is not supported as an operation input",
        ),
    ],
)
def test_ferrys_own_refusals_are_not_shown_to_cromwell(
    tmp_path: Path, text: str, reason: str
) -> None:
    # A registered server nothing answers at: asking it would add "could not be asked".
    _server("nobody")
    folder = tmp_path / "op"
    folder.mkdir()
    (folder / "main.wdl").write_text(text)
    with pytest.raises(IngestionError) as refused:
        ingest_operation(str(folder))
    assert reason in refused.value.message
    assert "cromwell" not in refused.value.details
