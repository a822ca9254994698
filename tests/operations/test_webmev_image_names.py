"""The image names WebMEV pulls for an operation, as Ferry looks them up on the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from operations.ingestion import FetchedSource, webmev_image_names

COMMIT = "4a9b9e76b7ac03793184ccf3d1b27f08c51341a7"


def fetched(label: str, *, is_git: bool = True) -> FetchedSource:
    return FetchedSource(
        Path("/nowhere"), COMMIT, f"https://github.com/web-mev/{label}", label, is_git
    )


@pytest.mark.parametrize("label", ["pca", "PCA.git", "Pca"])
def test_names_are_the_lower_case_repository_without_git(label: str) -> None:
    assert webmev_image_names(fetched(label), "operation_spec.json") == [
        f"ghcr.io/web-mev/pca:sha-{COMMIT}",
        f"docker.io/web-mev/pca:{COMMIT}",
    ]


def test_separators_inside_the_name_are_kept() -> None:
    names = webmev_image_names(fetched("mev-matrix_subset.v2"), "operation_spec.json")
    assert names[0] == f"ghcr.io/web-mev/mev-matrix_subset.v2:sha-{COMMIT}"


@pytest.mark.parametrize(
    ("label", "is_git", "spec_file"),
    [
        pytest.param("pca", False, "operation_spec.json", id="a-plain-folder-has-no-commit"),
        pytest.param("pca", True, "operation.json", id="a-ferry-spec-is-not-webmev"),
        pytest.param("my op+x", True, "operation_spec.json", id="not-an-image-name"),
        pytest.param("-pca", True, "operation_spec.json", id="leading-separator"),
    ],
)
def test_no_names_are_looked_up(label: str, is_git: bool, spec_file: str) -> None:
    assert webmev_image_names(fetched(label, is_git=is_git), spec_file) == []
