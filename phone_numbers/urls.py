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
    path(
        "projects/<int:pk>/sync-inventory/",
        views.project_sync_inventory,
        name="project_sync_inventory",
    ),
    path("imports/new/", views.import_new, name="import_new"),
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/<int:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<int:pk>/retry-failed/", views.job_retry_failed, name="job_retry_failed"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("jobs/<int:pk>/pause/", views.job_pause, name="job_pause"),
    path("jobs/<int:pk>/resume/", views.job_resume, name="job_resume"),
    path("jobs/<int:pk>/approve/", views.job_approve, name="job_approve"),
    path("jobs/<int:pk>/reject/", views.job_reject, name="job_reject"),
    path("jobs/<int:pk>/export.csv", views.job_export, name="job_export"),
    path("jobs/<int:pk>/failed.csv", views.job_failed_export, name="job_failed_export"),
    path("numbers/<int:pk>/retry/", views.number_retry, name="number_retry"),
    path("account/email/", views.email_preferences, name="email_preferences"),
    path("audit/", views.audit_list, name="audit_list"),
    path("audit/export.csv", views.audit_export, name="audit_export"),
    path("numbers/<int:pk>/", views.number_detail, name="number_detail"),
    path("numbers/export.csv", views.number_export, name="number_export"),
    path("numbers/where/", views.number_where, name="number_where"),
    path("numbers/in-space/<int:pk>/", views.space_number_detail, name="space_number_detail"),
]
