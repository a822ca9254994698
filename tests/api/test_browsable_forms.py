"""The browsable API: real forms to upload a file and start a job (choices limited to what the
user may use), Ferry's branding with a link to the docs, and Swagger's tags and examples."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from api import services
from api.models import File, Role, User, Workspace
from operations.models import Job
from tests.operations_fixtures import make_echo_operation

pytestmark = pytest.mark.django_db

HTML = {"Accept": "text/html"}


def signed_in(user: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def post_form(page: str) -> str:
    """The HTML of the browsable API's form that POSTs an object (its "HTML form" tab)."""
    match = re.search(r'id="post-object-form".*?(<form.*?</form>)', page, re.S)
    assert match, "no POST form on the page"
    return match.group(1)


def select_options(form: str, name: str) -> dict[str, str]:
    match = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', form, re.S)
    assert match, f"no <select name={name}> in the form"
    return {
        value: label.strip()
        for value, label in re.findall(r'<option[^>]*value="([^"]*)"[^>]*>(.*?)</option>', match[1])
        if value
    }


def tag_named(form: str, tag: str, name: str) -> str:
    match = re.search(rf'<{tag}\b[^>]*\bname="{name}"[^>]*>', form)
    assert match, f"no <{tag} name={name}> in the form"
    return match.group(0)


def csrf_token(form: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert match, "no CSRF token in the form"
    return match.group(1)


@pytest.fixture
def elsewhere(users: dict[str, User]) -> Workspace:
    """A workspace where the editor is only a viewer: never a choice to write to."""
    ws = services.workspace_create(user=users["other"], name="Read only here")
    services.member_add(workspace=ws, email=users["editor"].email, role=Role.VIEWER)
    return ws


def test_upload_form_has_a_file_picker_and_writable_workspaces(
    users: dict[str, User], workspace: Workspace, elsewhere: Workspace
) -> None:
    page = signed_in(users["editor"]).get("/api/files/", headers=HTML).content.decode()
    form = post_form(page)
    assert 'enctype="multipart/form-data"' in form
    assert 'type="file"' in tag_named(form, "input", "file")
    assert select_options(form, "workspace") == {str(workspace.pk): "Project A"}


def test_posting_the_upload_form_creates_the_file(
    users: dict[str, User], workspace: Workspace
) -> None:
    client = signed_in(users["editor"])
    form = post_form(client.get("/api/files/", headers=HTML).content.decode())
    response = client.post(
        "/api/files/",
        {
            "csrfmiddlewaretoken": csrf_token(form),
            "workspace": str(workspace.pk),
            "file": SimpleUploadedFile("notes.txt", b"from the form\n", "text/plain"),
            "name": "",
            "file_type": "",
            "sha256": "",
        },
        headers=HTML,
    )
    assert response.status_code == 201, response.content.decode()[:2000]
    created = File.objects.get(workspace=workspace, name="notes.txt")
    assert created.sha256 == hashlib.sha256(b"from the form\n").hexdigest()
    assert created.size == len(b"from the form\n")


def test_job_form_offers_operations_workspaces_and_json_inputs(
    users: dict[str, User], workspace: Workspace, elsewhere: Workspace
) -> None:
    operation = make_echo_operation()
    client = signed_in(users["editor"])
    form = post_form(client.get("/api/jobs/", headers=HTML).content.decode())
    assert select_options(form, "operation") == {str(operation.pk): "echo 1"}
    assert select_options(form, "workspace") == {str(workspace.pk): "Project A"}
    assert tag_named(form, "textarea", "inputs")

    response = client.post(
        "/api/jobs/",
        {
            "csrfmiddlewaretoken": csrf_token(form),
            "operation": str(operation.pk),
            "workspace": str(workspace.pk),
            "inputs": json.dumps({"text": "hello"}),
            "executor": "",
        },
        headers=HTML,
    )
    assert response.status_code == 201, response.content.decode()[:2000]
    job = Job.objects.get(workspace=workspace)
    assert (job.operation_id, job.inputs) == (operation.pk, {"text": "hello"})


def test_job_form_refuses_bad_json_inputs_by_field(
    users: dict[str, User], workspace: Workspace
) -> None:
    operation = make_echo_operation()
    client = signed_in(users["editor"])
    form = post_form(client.get("/api/jobs/", headers=HTML).content.decode())
    response = client.post(
        "/api/jobs/",
        {
            "csrfmiddlewaretoken": csrf_token(form),
            "operation": str(operation.pk),
            "workspace": str(workspace.pk),
            "inputs": "{not json",
        },
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400
    assert "inputs" in response.json()["details"]
    assert not Job.objects.exists()


def test_the_browsable_api_says_ferry_and_links_the_docs(users: dict[str, User]) -> None:
    page = signed_in(users["editor"]).get("/api/", headers=HTML).content.decode()
    assert "Django REST framework" not in page
    assert re.search(r"<title>[^<]*Ferry", page)
    assert 'href="/api/docs/"' in page
    login = Client().get("/api-auth/login/").content.decode()
    assert "Django REST framework" not in login
    assert "Ferry" in login
    assert 'href="/api/docs/"' in login


@pytest.fixture
def schema(users: dict[str, User]) -> dict[str, Any]:
    response = signed_in(users["staff"]).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return dict(json.loads(response.content))


def test_swagger_groups_operations_by_resource(schema: dict[str, Any]) -> None:
    declared = [t["name"] for t in schema["tags"]]
    tags: dict[str, set[str]] = {}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert len(operation.get("tags", [])) == 1, (method, path)
            (tag,) = operation["tags"]
            assert tag in declared, (method, path, tag)
            tags.setdefault(tag, set()).add(path)
    for resource in ("auth", "workspaces", "files", "sets", "operations", "jobs"):
        assert all(p.startswith(f"/api/{resource}/") for p in tags[resource]), tags[resource]
    assert "/api/files/uploads/" in tags["files"]
    assert tags["health"] == {"/healthz", "/readyz"}


def test_swagger_examples_are_valid(schema: dict[str, Any]) -> None:
    body = schema["paths"]["/api/files/uploads/"]["post"]["requestBody"]["content"]
    (example,) = body["application/json"]["examples"].values()
    value = example["value"]
    # A checksum that matches the size it's sent with: six bytes "hello\n".
    assert value["sha256"] == hashlib.sha256(b"hello\n").hexdigest()
    assert value["size"] == len(b"hello\n")
    assert not {"md5", "crc32c"} & set(value)
    for name, component in schema["components"]["schemas"].items():
        for link in ("next", "previous"):
            url = component.get("properties", {}).get(link, {}).get("example")
            if url is not None:
                parts = urlsplit(url)
                assert parts.scheme == "https", (name, url)
                assert '"' not in url, (name, url)


def test_the_status_page_asks_to_sign_in_then_shows_the_workspace_picker(
    users: dict[str, User],
) -> None:
    anonymous = Client(enforce_csrf_checks=True).get("/ui/")
    assert anonymous.status_code == 200
    page = anonymous.content.decode()
    assert 'id="sign-in"' in page
    assert 'action="/api-auth/login/"' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert "csrftoken" in anonymous.cookies  # the page's own writes send it back
    assert 'id="workspace"' not in page

    signed = signed_in(users["editor"]).get("/ui/").content.decode()
    assert 'id="sign-in"' not in signed
    assert 'id="workspace"' in signed
    assert "editor@example.org" in signed
    assert 'href="/api/docs/"' in signed
