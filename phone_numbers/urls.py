from django.urls import path

from phone_numbers import views

app_name = "phone_numbers"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("projects/", views.project_list, name="project_list"),
    path("projects/new/", views.project_create, name="project_create"),
    path("projects/<int:pk>/", views.project_detail, name="project_detail"),
    path("projects/<int:pk>/edit/", views.project_edit, name="project_edit"),
    path(
        "projects/<int:pk>/check-connection/",
        views.project_check_connection,
        name="project_check_connection",
    ),
    path("projects/<int:pk>/active/", views.project_set_active, name="project_set_active"),
]
