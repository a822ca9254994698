from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api.views.accounts import sign_in_form_throttled
from api.views.health import HealthView, ReadinessView, metrics
from api.views.status_page import status_page

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # rest_framework.urls, with the sign-in form under the limits of POST /api/auth/token/.
    path(
        "api-auth/",
        include(
            (
                [
                    path(
                        "login/",
                        sign_in_form_throttled(
                            auth_views.LoginView.as_view(template_name="api/login.html")
                        ),
                        name="login",
                    ),
                    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
                ],
                "rest_framework",
            )
        ),
    ),
    path("ui/", status_page, name="status-page"),
    path("healthz", HealthView.as_view(), name="healthz"),
    path("readyz", ReadinessView.as_view(), name="readyz"),
    path("metrics", metrics, name="metrics"),
]

handler400 = "api.exception_handlers.json_400"
handler403 = "api.exception_handlers.json_403"
handler404 = "api.exception_handlers.json_404"
handler500 = "api.exception_handlers.json_500"
