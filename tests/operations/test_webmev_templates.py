"""WebMEV entrypoints: Jinja templates rendered in a sandbox into argv words, each value kept
inside the one word where the template put it."""

from __future__ import annotations

import shlex
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from executors.specs import DockerRunSpec
from operations.spec import SpecError, parse_spec, render_argv
from operations.templates import TemplateProblem, split_rendered, template_problems
from operations.webmev import convert_webmev

BA = "api.converters.basic_attributes."
DR = "api.converters.data_resource."
ES = "api.converters.element_set."


def entry(converter: str, spec: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {
        "description": "",
        "name": "",
        "required": required,
        "converter": converter,
        "spec": spec,
    }


OPERATION: dict[str, Any] = {
    "name": "Template test",
    "description": "",
    "inputs": {
        "text": entry(BA + "UnrestrictedStringConverter", {"attribute_type": "UnrestrictedString"}),
        "matrix": entry(
            DR + "LocalDockerSingleDataResourceWithTypeConverter",
            {
                "attribute_type": "VariableDataResource",
                "resource_types": ["MTX", "I_MTX"],
                "many": False,
            },
        ),
        "files": entry(
            DR + "LocalDockerMultipleDataResourceConverter",
            {"attribute_type": "DataResource", "resource_type": "*", "many": True},
        ),
        "csv_files": entry(
            DR + "LocalDockerCsvResourceConverter",
            {"attribute_type": "DataResource", "resource_type": "*", "many": True},
        ),
        "space_files": entry(
            DR + "LocalDockerSpaceDelimResourceConverter",
            {"attribute_type": "DataResource", "resource_type": "*", "many": True},
        ),
        "samples": entry(ES + "ObservationSetCsvConverter", {"attribute_type": "ObservationSet"}),
        "genes": entry(ES + "FeatureSetListConverter", {"attribute_type": "FeatureSet"}),
        "keep": entry(
            BA + "BooleanAsIntegerConverter", {"attribute_type": "Boolean", "default": False}
        ),
        "label": entry(BA + "StringConverter", {"attribute_type": "String"}),
        "names": entry(BA + "NormalizingListToCsvConverter", {"attribute_type": "StringList"}),
        "ratio": entry(BA + "FloatConverter", {"attribute_type": "Float"}),
    },
    "outputs": {},
    "mode": "local_docker",
    "workspace_operation": True,
}


def spec_for(template: str) -> dict[str, Any]:
    return convert_webmev(OPERATION, entrypoint=template)


HOSTILE = ["a b", '"; rm -rf /', "$(id)", "`id`", "line\nnext", "it's", "\\", "  ", "*", "a\tb"]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("run {{text}} end", ["run", "{}", "end"]),
        ('run -s "{{text}}" end', ["run", "-s", "{}", "end"]),
        ("run '{{text}}' end", ["run", "{}", "end"]),
        ("run --text={{text}}:x end", ["run", "--text={}:x", "end"]),
    ],
    ids=["bare", "double-quoted", "single-quoted", "inside-a-word"],
)
def test_hostile_values_stay_in_their_word(value: str, template: str, expected: list[str]) -> None:
    argv = render_argv(spec_for(template), {"text": value})
    assert argv == [word.replace("{}", value) for word in expected]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(min_size=1))
def test_any_text_arrives_as_one_word(value: str) -> None:
    spec = SPEC_QUOTED
    assert render_argv(spec, {"text": value}) == ["run", "-t", value, "end"]


SPEC_QUOTED = convert_webmev(OPERATION, entrypoint='run -t "{{text}}" end')


def test_empty_values_follow_the_templates_quoting() -> None:
    spec = spec_for('run {{text}} -q "{{text}}" end')
    assert render_argv(spec, {"text": ""}) == ["run", "-q", "", "end"]


def test_if_blocks_and_undefined_optional_inputs() -> None:
    spec = spec_for(
        'run -i {{matrix}} {% if samples %} -s "{{samples}}" {% endif %}'
        "{% if keep %}--keep{% endif %} {{ label }}"
    )
    matrix = {"path": "/work/a b.tsv", "resource_type": "I_MTX"}
    assert render_argv(spec, {"matrix": matrix}) == ["run", "-i", "/work/a b.tsv:::I_MTX"]
    samples = {"elements": [{"id": "S1", "attributes": {}}, {"id": "S 2"}]}
    argv = render_argv(
        spec, {"matrix": matrix, "samples": samples, "keep": True, "label": " my label "}
    )
    assert argv == ["run", "-i", "/work/a b.tsv:::I_MTX", "-s", "S1,S 2", "--keep", "my_label"]
    # An empty set is false, as its empty CSV is in WebMEV.
    assert "-s" not in render_argv(spec, {"matrix": matrix, "samples": {"elements": []}})


def test_loops_and_renderings() -> None:
    spec = spec_for(
        "run {% for f in files %}-f {{f}} {% endfor %}{{files}} {{csv_files}} {{space_files}} "
        "{{genes}} {{names}} {{ratio}} {{keep}}"
    )
    paths = ["/w/a", "/w/b c"]
    argv = render_argv(
        spec,
        {
            "files": paths,
            "csv_files": paths,
            "space_files": paths,
            "genes": {"elements": [{"id": "G1"}, {"id": "G2"}]},
            "names": [" a b", "c"],
            "ratio": 0.5,
        },
    )
    assert argv == [
        "run",
        "-f",
        "/w/a",
        "-f",
        "/w/b c",
        '["/w/a", "/w/b c"]',
        "/w/a,/w/b c",
        "/w/a /w/b c",
        '["G1", "G2"]',
        "a_b,c",
        "0.5",
        "0",
    ]


def test_a_path_with_type_needs_the_type_when_several_are_allowed() -> None:
    spec = spec_for("run {{matrix}}")
    with pytest.raises(ValueError, match="resource type"):
        render_argv(spec, {"matrix": "/w/a.tsv"})


def test_missing_and_unknown_values_are_refused() -> None:
    raw = {**OPERATION, "inputs": dict(OPERATION["inputs"])}
    raw["inputs"]["text"] = {**raw["inputs"]["text"], "required": True}
    spec = convert_webmev(raw, entrypoint="run {{text}}")
    with pytest.raises(ValueError, match="'text' has no value"):
        render_argv(spec, {})
    with pytest.raises(ValueError, match="no such inputs: nope"):
        render_argv(spec, {"text": "x", "nope": 1})


def test_template_errors_name_their_line() -> None:
    assert template_problems("run\n{% if x %}\n-x", ["x"])[0].startswith("entrypoint.txt:2:")
    assert template_problems("run\n{{ x | nosuchfilter }}", ["x"])[0].startswith(
        "entrypoint.txt:2:"
    )
    with pytest.raises(TemplateProblem, match=r"^entrypoint.txt:3: "):
        split_rendered("run\n{{ x }}\n{{ 1 // 0 }}", {"x": "a"})


def test_the_sandbox_refuses_attribute_games() -> None:
    problems = template_problems("run {{ text.__class__.__mro__ }}", ["text"])
    assert problems
    assert "entrypoint.txt:1" in problems[0]
    with pytest.raises(TemplateProblem):
        split_rendered("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})


def test_filters_that_rewrite_a_value_are_refused() -> None:
    with pytest.raises(SpecError, match="rewrote an input's text"):
        spec_for("run {{ text|upper }}")
    with pytest.raises(TemplateProblem, match="rewrote an input's text"):
        split_rendered("run {{ text|replace('x', 'y') }}", {"text": "a"})
    assert render_argv(spec_for("run {{ text|default('none') }}"), {}) == ["run", "none"]
    # Optional inputs may be undefined: a template must test them before using them.
    with pytest.raises(SpecError, match="'ratio' is undefined"):
        spec_for("run {% if ratio|float > 0.5 %}--high{% endif %}")
    spec = spec_for(
        "run {% if ratio is defined and ratio|float > 0.5 %}--high{% endif %} {{ names|length }}"
    )
    # The length of what the converter gives: here the CSV text "a,b".
    assert render_argv(spec, {"ratio": 0.7, "names": ["a", "b"]}) == ["run", "--high", "3"]
    assert render_argv(spec, {"ratio": 0.2, "names": ["a"]}) == ["run", "1"]


def test_quoting_is_checked_in_every_branch_tried() -> None:
    # Unbalanced only when the optional input is absent.
    template = 'run {% if text %}"{{text}}"{% else %}"{% endif %}'
    assert template_problems(template, ["text"]) == []  # required: always given
    problems = template_problems(template, ["text"], optional=["text"])
    assert problems
    assert "can't be split" in problems[0]
    with pytest.raises(SpecError, match="can't be split"):
        spec_for(template)  # text is optional in OPERATION


def test_a_ferry_spec_may_use_the_webmev_style() -> None:
    spec = parse_spec(
        {
            "name": "styled",
            "version": "1",
            "command": 'echo {% if n %}"{{ n }}"{% endif %}',
            "command_style": "webmev",
            "inputs": {"n": {"type": "string", "required": False}},
        }
    )
    assert spec["command_style"] == "webmev"
    assert parse_spec(spec) == spec
    assert render_argv(spec, {"n": "a b"}) == ["echo", "a b"]
    assert render_argv(spec, {}) == ["echo"]


@pytest.mark.django_db
def test_a_job_of_a_webmev_operation_gets_its_words_quoted() -> None:
    from operations.models import Operation
    from operations.services import build_run_spec

    spec = spec_for('run -t "{{text}}" {% if keep %}--keep{% endif %}')
    operation = Operation(name="template-test", version="0", spec=spec, mode="docker", image="i")
    run = build_run_spec(operation, {"text": "$(id); a b", "keep": True})
    command = cast(DockerRunSpec, run)["command"]
    assert shlex.split(command) == ["run", "-t", "$(id); a b", "--keep"]
