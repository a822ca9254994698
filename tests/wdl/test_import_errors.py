"""An error inside an imported file is reported at its cause, naming every import that led there;
files with Windows line ends load as miniwdl's own reader loads them."""

from __future__ import annotations

import pytest

import wdl

MAIN = """version 1.0

import "steps/sub.wdl" as sub

workflow top {
  call sub.inner
}
"""

SUB = """version 1.0

import "deeper.wdl" as deeper

workflow inner {
  call deeper.echo
  output {
    Int n = echo.n
  }
}
"""

DEEPER_BROKEN = """version 1.0

task echo {
  command <<< echo hi >>>
  output {
    Int n = "not a number" +
  }
}
"""


def _errors(files: dict[str, str]) -> list[wdl.WdlError]:
    bundle = wdl.Bundle(
        files={name: text.encode() for name, text in files.items()},
        main="main.wdl",
        origin="/bundle",
        label="test",
    )
    with pytest.raises(wdl.WorkflowInvalid) as caught:
        wdl.load_workflow(bundle)
    return caught.value.errors


def test_an_error_two_imports_deep_names_its_place_and_both_import_sites() -> None:
    errors = _errors({"main.wdl": MAIN, "steps/sub.wdl": SUB, "steps/deeper.wdl": DEEPER_BROKEN})
    assert len(errors) == 1
    error = errors[0]
    assert (error["file"], error["line"]) == ("steps/deeper.wdl", 7)
    assert error["message"].startswith("syntax error")
    assert error["message"].endswith(
        "(main.wdl:3:1 imports steps/sub.wdl; steps/sub.wdl:3:1 imports steps/deeper.wdl)"
    )
    assert wdl.WorkflowInvalid(errors).describe().startswith("steps/deeper.wdl:7:")


def test_a_type_error_in_an_imported_task_names_the_import_site() -> None:
    broken = DEEPER_BROKEN.replace('"not a number" +', "no_such_value")
    errors = _errors({"main.wdl": MAIN, "steps/sub.wdl": SUB, "steps/deeper.wdl": broken})
    assert [(e["file"], e["line"], e["column"]) for e in errors] == [("steps/deeper.wdl", 6, 13)]
    assert "(main.wdl:3:1 imports steps/sub.wdl; " in errors[0]["message"]


def test_windows_line_ends_load_instead_of_crashing() -> None:
    # miniwdl's parser raised a bare AssertionError on \r\n (a 500 through the API).
    text = "version 1.0\r\n\r\n# a comment\r\ntask t {\r\n  command <<< echo hi >>>\r\n}\r\n"
    loaded = wdl.load_workflow(wdl.bundle_from_text(text))
    assert loaded.workflow_name == "t"
