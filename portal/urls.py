from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from phone_numbers.views import LoginView, admin_login

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    # Before the admin's own URLs, which it replaces (see admin_login).
    path("admin/login/", admin_login, name="admin_login"),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's, a bare error).
    path(
        "favicon.ico",
        # Lazy: the static files' manifest is read at the first request, not at import.
        login_not_required(RedirectView.as_view(url=lazy(static, str)("favicon.svg"))),
        name="favicon",
    ),
    path("", include("phone_numbers.urls")),
]
