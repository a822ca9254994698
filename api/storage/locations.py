"""Storage locations: where files may live and with which connection settings.

A location is a URI prefix: the site's default (``settings.FERRY_STORAGE_LOCATION``, or the local
"files" storage when that is empty), each bucket credential an admin registered (its
``config.location``, reached with its own keys), and ``settings.FERRY_IMPORT_LOCATIONS`` (read with
the site's credentials). A URI belongs to the registered location with the longest matching
prefix; a URI outside every location is refused.

Who may use a location: files are written (uploads, job results) to a workspace's location by
whoever may write to the workspace. A workspace's location may be set to a credential's location
(by staff, or by its owners when the credential's config says ``"workspace_storage": true``).
Objects may be imported by staff from any location, and by users only from shared ones (shared
credentials, ``"shared": true``, and ``FERRY_IMPORT_LOCATIONS``, which are read-only).

Workspace storage and shared import locations never overlap: a credential or setting that would
make them overlap is refused. And whatever the locations, a user imports no object under a
workspace's own prefix (``…/workspaces/<id>/``) of a workspace they can't read, nor an object
that a file of such a workspace stands for.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages

from ..exceptions import ApplicationError, field_error
from ..models import Credential, CredentialKind, User, Workspace
from . import buckets

FILES_STORAGE_ALIAS = "files"
_BUCKET_KINDS = {CredentialKind.S3: "s3", CredentialKind.GCS: "gs"}


class LocationRefused(ApplicationError):
    status_code: int = 400
    code = "location_refused"


@dataclass(frozen=True)
class Location:
    """A URI prefix Ferry may store to or read from, with how to reach it."""

    uri: str  # "file:///abs/dir/", "s3://bucket/prefix/" (always ends with "/")
    config: buckets.BucketConfig | None = None  # None for local storage
    source: str = "site"  # "site", "credential:<name>", "import"
    shared: bool = True  # non-staff users may import its objects
    workspace_storage: bool = False  # workspace owners may store their files here

    @property
    def scheme(self) -> str:
        return self.uri.split("://", 1)[0]

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    def contains(self, uri: str) -> bool:
        return uri.startswith(self.uri) or uri.rstrip("/") + "/" == self.uri

    def ref(self) -> buckets.ObjectRef:
        return buckets.parse_uri(self.uri)

    def client(self) -> buckets.BucketClient:
        return buckets.client_for(self.scheme, self.config)

    def object_uri(self, key: str) -> str:
        if self.is_local:
            return self.uri + quote(key)
        return self.uri + key


_IDENTITY_FIELDS = (
    "endpoint_url",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "project",
    "credentials_json",
    "api_endpoint",
    "anonymous",
)


def same_account(a: Location, b: Location) -> bool:
    """True when one client can read ``a`` and write ``b``: same provider, same server and the
    same credentials (timeouts and other tuning may differ). Then copies are server-side."""
    if a.scheme != b.scheme or a.config is None or b.config is None:
        return False
    return all(getattr(a.config, f) == getattr(b.config, f) for f in _IDENTITY_FIELDS)


def _prefix(uri: str) -> str:
    return uri if uri.endswith("/") else uri + "/"


def local_root() -> Path:
    storage = storages[FILES_STORAGE_ALIAS]
    if not isinstance(storage, FileSystemStorage):
        raise ApplicationError(
            "The 'files' storage must be a FileSystemStorage; set FERRY_STORAGE_LOCATION for "
            "buckets instead.",
            status_code=503,
            code="storage_unavailable",
        )
    return Path(storage.location).resolve()


def local_location() -> Location:
    return Location(uri="file://" + quote(str(local_root())) + "/", source="site")


def site_location() -> Location:
    configured = (settings.FERRY_STORAGE_LOCATION or "").strip()
    if not configured:
        return local_location()
    ref = buckets.parse_uri(configured)
    # Every workspace's files live here: users write through Ferry, but only staff may import.
    return Location(
        uri=_prefix(ref.uri),
        config=buckets.default_config(ref.scheme),
        source="site",
        shared=False,
    )


def _credential_location(credential: Credential) -> Location | None:
    from ..credentials import bucket_config
    from ..crypto import decrypt_secret

    try:
        secret = decrypt_secret(credential.secret_ciphertext)
        ref, config = bucket_config(credential.kind, dict(credential.config), secret)
    except (ApplicationError, ValueError):
        return None  # a broken credential is shown by its check, not used
    return Location(
        uri=_prefix(ref.uri),
        config=config,
        source=f"credential:{credential.name}",
        shared=bool(credential.config.get("shared")),
        workspace_storage=bool(credential.config.get("workspace_storage")),
    )


def registered_locations() -> list[Location]:
    """Every location, most specific prefix first."""
    found = [site_location(), local_location()]
    for credential in Credential.objects.filter(kind__in=list(_BUCKET_KINDS)):
        location = _credential_location(credential)
        if location is not None:
            found.append(location)
    for raw in settings.FERRY_IMPORT_LOCATIONS:
        ref = buckets.parse_uri(raw)
        found.append(
            Location(
                uri=_prefix(ref.uri), config=buckets.default_config(ref.scheme), source="import"
            )
        )
    return sorted(found, key=lambda loc: len(loc.uri), reverse=True)


def location_of(uri: str) -> Location | None:
    """The registered location a URI belongs to (longest prefix), or None."""
    for location in registered_locations():
        if location.contains(uri):
            return location
    return None


def workspace_location(workspace: Workspace) -> Location:
    """Where the workspace's new files go."""
    if workspace.storage_location:
        location = location_of(_prefix(workspace.storage_location))
        if location is not None:
            if location.uri == _prefix(workspace.storage_location):
                return location
            return Location(
                uri=_prefix(workspace.storage_location),
                config=location.config,
                source=location.source,
                shared=location.shared,
                workspace_storage=location.workspace_storage,
            )
        raise ApplicationError(
            f"The workspace's storage location {workspace.storage_location} is not registered "
            "any more; an admin must register it again, or an owner must choose another.",
            status_code=503,
            code="storage_unavailable",
        )
    return site_location()


def overlap(a: str, b: str) -> bool:
    """True when one prefix lies inside the other (``s3://b/x/`` and ``s3://b/x/y/``)."""
    a, b = _prefix(a), _prefix(b)
    return a.startswith(b) or b.startswith(a)


def import_locations() -> list[Location]:
    """The locations every user may import from: shared credentials and FERRY_IMPORT_LOCATIONS."""
    return [loc for loc in registered_locations() if loc.shared and not loc.is_local]


def workspace_storage_prefixes(*, except_credential: Any = None) -> list[tuple[str, str]]:
    """Every prefix workspace files are written under, with what puts them there: the site's
    bucket, workspaces' chosen locations, and credentials owners may choose."""
    found: list[tuple[str, str]] = []
    site = site_location()
    if not site.is_local:
        found.append((site.uri, "FERRY_STORAGE_LOCATION"))
    for raw in (
        Workspace.objects.exclude(storage_location="")
        .values_list("storage_location", flat=True)
        .distinct()
    ):
        found.append((_prefix(raw), "a workspace's storage_location"))
    for credential in Credential.objects.filter(kind__in=list(_BUCKET_KINDS)).exclude(
        pk=except_credential
    ):
        if credential.config.get("workspace_storage") and credential.config.get("location"):
            found.append(
                (_prefix(str(credential.config["location"])), f"credential {credential.name}")
            )
    return found


_WORKSPACE_SEGMENT = re.compile(
    r"(?:^|/)workspaces/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12})(?:/|$)"
)


def workspace_ids_in(key: str) -> set[uuid.UUID]:
    """The workspaces whose own storage prefix (``…/workspaces/<id>/``) a key lies under."""
    return {uuid.UUID(m.group(1)) for m in _WORKSPACE_SEGMENT.finditer(key)}


def may_import(user: User, location: Location) -> bool:
    """Objects of a location may be registered as files by staff, and by everyone when the
    location is shared (a shared credential, or FERRY_IMPORT_LOCATIONS). The site's storage
    and unshared credentials hold other workspaces' files: not importable by users."""
    return bool(user.is_staff or location.shared)


def check_storage_location(user: User, raw: str, *, field: str = "storage_location") -> str:
    """Validate a workspace's storage location: a bucket prefix inside a registered location
    that ``user`` may use. Returns it normalized (ending with ``/``); empty stays empty."""
    raw = (raw or "").strip()
    if not raw:
        return ""
    try:
        ref = buckets.parse_uri(raw)
    except buckets.InvalidObjectURI as exc:
        raise field_error(field, exc.message) from None
    normalized = _prefix(ref.uri)
    location = location_of(normalized)
    writable = location is not None and (
        location.source.startswith("credential:") or (location.source == "site" and user.is_staff)
    )
    if location is None or location.is_local or not writable:
        raise field_error(
            field,
            f"{normalized} is not inside a registered storage location Ferry writes to; an "
            "admin registers bucket locations as credentials.",
            code="location_refused",
        )
    if not (user.is_staff or location.workspace_storage):
        raise field_error(
            field,
            f"You may not store files in {location.uri} (an admin marks a credential's location "
            'with "workspace_storage": true for owners to choose it).',
            code="forbidden",
        )
    for shared in import_locations():
        if overlap(shared.uri, normalized):
            raise field_error(
                field,
                f"{normalized} overlaps {shared.uri}, from which every user may import; "
                "workspace files can't be stored there.",
                code="location_refused",
            )
    return normalized


def resolve(uri: str) -> tuple[Location, buckets.ObjectRef]:
    """The location and bucket reference of a stored object's URI (bucket URIs only)."""
    location = location_of(uri)
    if location is None:
        raise LocationRefused(f"{uri} is not inside any registered storage location.")
    return location, buckets.parse_uri(uri)


def local_path_of(uri: str) -> Path:
    """The path of a ``file://`` URI, which must lie inside the local storage root."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise LocationRefused(f"{uri} is not a local file URI")
    path = Path(unquote(parsed.path)).resolve()
    root = local_root()
    if root not in path.parents:
        raise LocationRefused("the file's location is outside Ferry's storage root")
    return path


def upload_staging_key(workspace_id: Any, file_id: uuid.UUID, name: str) -> str:
    """Where a direct upload's signed URLs put the bytes until completion copies them to the
    file's :func:`object_key` (under the workspace's prefix, so no stranger imports them)."""
    return f"workspaces/{workspace_id}/uploads/{file_id}/{name}"


def object_key(workspace_id: Any, file_id: uuid.UUID, name: str) -> str:
    """Where a new file's object goes under its location: grouped by workspace, named for
    people browsing the bucket, unique by the file's id."""
    return f"workspaces/{workspace_id}/files/{file_id}/{name}"


def check_import_locations(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """System check: no FERRY_IMPORT_LOCATIONS entry (every user may import from it) overlaps
    FERRY_STORAGE_LOCATION, where every workspace's files are stored."""
    from django.core import checks

    site = (settings.FERRY_STORAGE_LOCATION or "").strip()
    errors: list[Any] = []
    for raw in settings.FERRY_IMPORT_LOCATIONS:
        try:
            ref = buckets.parse_uri(raw)
        except buckets.InvalidObjectURI as exc:
            errors.append(checks.Error(f"FERRY_IMPORT_LOCATIONS: {exc.message}", id="ferry.E021"))
            continue
        if site and overlap(ref.uri, site):
            errors.append(
                checks.Error(
                    f"FERRY_IMPORT_LOCATIONS entry {raw} overlaps FERRY_STORAGE_LOCATION {site}: "
                    "every user could import other workspaces' files.",
                    hint="Use a prefix apart from the site's storage location.",
                    id="ferry.E020",
                )
            )
    return errors
