"""``/ui/``: a small status page (plain HTML and JS, served as one template): sign in, pick a
workspace, upload, start an operation from the catalog's form, watch jobs and files change live,
download results. A demo and a test target that uses the API like any client; not the product
frontend."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe


@require_safe
@ensure_csrf_cookie
def status_page(request: HttpRequest) -> HttpResponse:
    """Signed in (session): the page; otherwise a sign-in form that comes back here."""
    return render(request, "api/status_page.html", {"signed_in": request.user.is_authenticated})
