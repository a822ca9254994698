from django.urls import include, path
from rest_framework.routers import DefaultRouter

from .views import (
    accounts,
    credentials,
    cromwell,
    element_sets,
    events,
    files,
    jobs,
    operations,
    uploads,
    workspaces,
)
from .views.common import UUID_REGEX

router = DefaultRouter()
router.include_format_suffixes = False
router.register("workspaces", workspaces.WorkspaceViewSet, basename="workspace")
router.register(
    rf"workspaces/(?P<workspace_pk>{UUID_REGEX})/members",
    workspaces.WorkspaceMemberViewSet,
    basename="workspace-member",
)
router.register("files/uploads", uploads.DirectUploadViewSet, basename="file-direct-upload")
router.register("files", files.FileViewSet, basename="file")
router.register("sets", element_sets.ElementSetViewSet, basename="element-set")
router.register("auth/api-tokens", accounts.ApiTokenViewSet, basename="api-token")
router.register("operations", operations.OperationViewSet, basename="operation")
router.register("jobs", jobs.JobViewSet, basename="job")
router.register("credentials", credentials.CredentialViewSet, basename="credential")
router.register("cromwell-servers", cromwell.CromwellServerViewSet, basename="cromwell-server")

urlpatterns = [
    path("auth/token/", accounts.SignInTokenView.as_view(), name="token-obtain"),
    path("auth/token/refresh/", accounts.TokenRefreshView.as_view(), name="token-refresh"),
    path("auth/me/", accounts.MeView.as_view(), name="me"),
    path("auth/password/", accounts.PasswordChangeView.as_view(), name="password-change"),
    path("auth/register/", accounts.RegisterView.as_view(), name="register"),
    path("events/", events.event_stream, name="event-stream"),
    path("events/token/", events.EventStreamTokenView.as_view(), name="event-stream-token"),
    path("executors/", jobs.ExecutorListView.as_view(), name="executor-list"),
    path("", include(router.urls)),
]
