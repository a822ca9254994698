"""Rows become the same model instances with ``DirectFromDb`` as through ``Model.__init__``.

Django builds them through ``Model.__init__`` whenever a ``post_init`` receiver listens (that
is ``DirectFromDb``'s fallback), so each queryset below is read twice, with and without a
receiver, and the instances compared: the same ``__dict__`` (keys in the same order, values
of the same types), the same ``_state``, the same related objects cached by
``select_related`` and ``prefetch_related``, recursively. Full rows, deferred and ``only``
columns, and annotated ones; and a model that gets a receiver is built by Django again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db.models import F, Prefetch, QuerySet
from django.db.models.signals import post_init

from api import services
from api.hydration import DirectFromDb
from api.models import ApiToken, File, Membership, User, Workspace
from api.selectors import files_visible_to, user_columns_unlisted, workspaces_listed_for
from operations.models import Job, Operation
from operations.selectors import LISTED_OUTPUT_FILES, jobs_visible_to
from operations.states import JobStatus
from tests.operations_fixtures import make_echo_operation

pytestmark = pytest.mark.django_db

LISTED_MODELS = (User, ApiToken, Workspace, Membership, File, Operation, Job)


@contextmanager
def _built_by_django() -> Iterator[list[Any]]:
    """While it lasts, a post_init receiver listens to every model: Django builds them."""
    built: list[Any] = []

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        built.append(instance)

    post_init.connect(receiver, weak=False)
    try:
        yield built
    finally:
        post_init.disconnect(receiver)


def _shape(instance: Any, depth: int = 0) -> Any:
    """Everything an instance holds: its values (typed, in order), its state, and the same of
    the related objects and prefetched lists it caches."""
    if isinstance(instance, list):
        return [_shape(item, depth + 1) for item in instance]
    if instance is None or depth > 4:
        return instance
    values = [
        (key, type(value), _shape(value, depth + 1) if isinstance(value, list) else value)
        for key, value in instance.__dict__.items()
        if key not in ("_state", "_prefetched_objects_cache")
    ]
    state = instance._state
    cached = (
        {
            name: _shape(related, depth + 1)
            for name, related in state.__dict__["fields_cache"].items()
        }
        if "fields_cache" in state.__dict__
        else {}
    )
    return (type(instance), values, state.adding, state.db, cached)


@pytest.fixture
def rows(users: dict[str, User], workspace: Workspace, make_file: Callable[..., File]) -> None:
    owner = users["owner"]
    ready = make_file(workspace, name="ready.tsv")
    job = Job.objects.create(
        operation=make_echo_operation(),
        workspace=workspace,
        owner=owner,
        status=JobStatus.SUCCEEDED.value,
        inputs={"text": "héllo", "n": [1, 2.5, None]},
        outputs={"said": str(ready.pk)},
    )
    Job.objects.create(operation=None, workspace=workspace, owner=owner, inputs={})
    File.objects.filter(pk=ready.pk).update(produced_by=job)
    services.api_token_create(user=owner, name="laptop")


def _querysets(user: User) -> list[QuerySet[Any]]:
    return [
        *(model.objects.all() for model in LISTED_MODELS),
        jobs_visible_to(user, for_list=True),
        jobs_visible_to(user),
        files_visible_to(user).defer(*user_columns_unlisted("owner")),
        workspaces_listed_for(user),
        Job.objects.only("id", "status", "owner__email").select_related("owner"),
        Job.objects.defer("inputs", "created_at").prefetch_related(
            Prefetch("output_files", queryset=File.objects.select_related("workspace"))
        ),
        File.objects.annotate(owner_email=F("owner__email")).select_related("produced_by"),
        ApiToken.objects.select_related("user"),
        Membership.objects.select_related("user", "workspace"),
    ]


@pytest.mark.usefixtures("rows")
def test_instances_are_those_django_builds(users: dict[str, User]) -> None:
    for queryset in _querysets(users["owner"]):
        direct = [_shape(row) for row in queryset.all()]
        with _built_by_django() as built:
            by_django = [_shape(row) for row in queryset.all()]
        assert built, queryset.query  # (the fallback: Django's own __init__ ran)
        assert direct, queryset.query
        assert direct == by_django, queryset.query


@pytest.mark.usefixtures("rows")
def test_listed_models_take_the_direct_way(users: dict[str, User]) -> None:
    jobs = list(jobs_visible_to(users["owner"], for_list=True))
    assert any(getattr(job, LISTED_OUTPUT_FILES) for job in jobs)
    for model in LISTED_MODELS:
        assert issubclass(model, DirectFromDb)
        assert model.objects.exists()
        list(model.objects.all()[:1])
        plan: Any = model.__dict__["_direct_from_db_plan"]
        assert plan.direct, model  # (every column a plain attribute, Django's __init__)


@pytest.mark.usefixtures("rows")
def test_instances_save_and_refresh_as_django_ones() -> None:
    job = Job.objects.defer("inputs").get(status=JobStatus.SUCCEEDED.value)
    assert job.get_deferred_fields() == {"inputs"}
    assert job.inputs["text"] == "héllo"  # (a deferred column is read on access)
    job.attempts = 7
    job.save(update_fields=["attempts"])
    assert Job.objects.get(pk=job.pk).attempts == 7
    file = File.objects.get(name="ready.tsv")
    assert file.produced_by == job
    assert not file._state.adding
    assert file == File.objects.get(pk=file.pk)
