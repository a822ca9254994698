"""Shared fixtures: users in every role, a workspace, a file, and API clients signed in as each."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from api import services
from api.models import File, Role, User, Workspace
from api.storage.uploads import SpooledUpload

ROLES = ("anonymous", "owner", "editor", "viewer", "other", "staff")
PASSWORD = "correct-horse-battery-staple"


def make_user(email: str, **extra: Any) -> User:
    return User.objects.create_user(email=email, password=PASSWORD, **extra)


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    """Rate-limit counters of one test never refuse requests in another."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def storage_root(tmp_path: Path, settings: Any) -> Path:
    """Each test gets its own storage root, so leftovers of one test can't hide in another."""
    root = tmp_path / "storage"
    (root / ".incoming").mkdir(parents=True)
    settings.FERRY_STORAGE_ROOT = root
    settings.FILE_UPLOAD_TEMP_DIR = str(root / ".incoming")
    settings.STORAGES = {
        **settings.STORAGES,
        "files": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root / "files")},
        },
    }
    return root


@pytest.fixture
def users(db: Any) -> dict[str, User]:
    return {
        "owner": make_user("owner@example.org"),
        "editor": make_user("editor@example.org"),
        "viewer": make_user("viewer@example.org"),
        "other": make_user("other@example.org"),
        "staff": make_user("staff@example.org", is_staff=True),
    }


@pytest.fixture
def workspace(users: dict[str, User]) -> Workspace:
    ws = services.workspace_create(user=users["owner"], name="Project A")
    services.member_add(workspace=ws, email=users["editor"].email, role=Role.EDITOR)
    services.member_add(workspace=ws, email=users["viewer"].email, role=Role.VIEWER)
    return ws


def spool(data: bytes, name: str = "data.bin") -> SpooledUpload:
    upload = SpooledUpload(name, "application/octet-stream")
    upload.append(data)
    return upload.finish()


@pytest.fixture
def make_file(users: dict[str, User]) -> Callable[..., File]:
    def make(
        workspace: Workspace,
        data: bytes = b"a\tb\n1\t2\n",
        name: str = "table.tsv",
        owner: User | None = None,
        file_type: str | None = None,
    ) -> File:
        return services.file_create_from_upload(
            user=owner or users["owner"],
            workspace=workspace,
            upload=spool(data, name),
            name=name,
            file_type=file_type,
        )

    return make


@pytest.fixture
def file(workspace: Workspace, make_file: Callable[..., File]) -> File:
    return make_file(workspace)


@pytest.fixture
def client_for(users: dict[str, User]) -> Callable[[str], APIClient]:
    def make(role: str) -> APIClient:
        client = APIClient()
        if role != "anonymous":
            client.force_authenticate(users[role])
        return client

    return make


def multipart_file(data: bytes, name: str) -> io.BytesIO:
    buf = io.BytesIO(data)
    buf.name = name
    return buf
