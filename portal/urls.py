from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

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
    path("", include("phone_numbers.urls")),
]
