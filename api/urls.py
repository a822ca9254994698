from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views, views_auth, views_credentials, views_cromwell, views_jobs

router = DefaultRouter()
router.include_format_suffixes = False
router.register("workspaces", views.WorkspaceViewSet, basename="workspace")
router.register(
    rf"workspaces/(?P<workspace_pk>{views.UUID_REGEX})/members",
    views.WorkspaceMemberViewSet,
    basename="workspace-member",
)
router.register("files/uploads", views.DirectUploadViewSet, basename="file-direct-upload")
router.register("files", views.FileViewSet, basename="file")
router.register("auth/api-tokens", views.ApiTokenViewSet, basename="api-token")
router.register("operations", views_jobs.OperationViewSet, basename="operation")
router.register("jobs", views_jobs.JobViewSet, basename="job")
router.register("credentials", views_credentials.CredentialViewSet, basename="credential")
router.register(
    "cromwell-servers", views_cromwell.CromwellServerViewSet, basename="cromwell-server"
)

urlpatterns = [
    path("auth/token/", views_auth.SignInTokenView.as_view(), name="token-obtain"),
    path("auth/token/refresh/", views_auth.TokenRefreshView.as_view(), name="token-refresh"),
    path("auth/me/", views.MeView.as_view(), name="me"),
    path("auth/password/", views.PasswordChangeView.as_view(), name="password-change"),
    path("auth/register/", views.RegisterView.as_view(), name="register"),
    path("", include(router.urls)),
]
