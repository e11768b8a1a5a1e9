from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, permission_required
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from phone_numbers import health
from phone_numbers.forms import ProjectForm
from phone_numbers.models import Project
from phone_numbers.tasks import check_project_connection

PROJECT_SEARCH_MAX_LENGTH = 200


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "phone_numbers/home.html")


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": health.database_answers(), "broker": health.broker_answers()}
    is_healthy = all(checks.values())
    body = {"status": "ok" if is_healthy else "unavailable"}
    body.update({name: "ok" if answers else "unavailable" for name, answers in checks.items()})
    return JsonResponse(body, status=200 if is_healthy else 503)


@require_GET
@permission_required("phone_numbers.view_project", raise_exception=True)
@vary_on_headers("HX-Request")
def project_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:PROJECT_SEARCH_MAX_LENGTH]
    context = {
        "projects": Project.objects.search(query)
        .with_token_hint()
        .order_by("-is_active", "name", "pk"),
        "query": query,
    }
    if request.htmx:
        return render(request, "phone_numbers/partials/project_rows.html", context)
    return render(request, "phone_numbers/project_list.html", context)


@require_GET
@permission_required("phone_numbers.view_project", raise_exception=True)
@vary_on_headers("HX-Request")
def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=pk)
    context = {"project": project}
    if request.htmx:
        return render(request, "phone_numbers/partials/project_connection.html", context)
    context["credentials"] = project.credentials.select_related("created_by", "revoked_by")
    return render(request, "phone_numbers/project_detail.html", context)


@require_http_methods(["GET", "POST"])
@permission_required("phone_numbers.add_project", raise_exception=True)
@sensitive_post_parameters("token")
def project_create(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and (project := _save_project(request, form)):
        messages.success(request, f"Project “{project.name}” added. Checking its connection…")
        return redirect("phone_numbers:project_detail", pk=project.pk)
    return render(request, "phone_numbers/project_form.html", {"form": form})


@require_http_methods(["GET", "POST"])
@permission_required("phone_numbers.change_project", raise_exception=True)
@sensitive_post_parameters("token")
def project_edit(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=pk)
    form = ProjectForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid() and _save_project(request, form):
        messages.success(request, f"Project “{project.name}” saved.")
        return redirect("phone_numbers:project_detail", pk=project.pk)
    return render(request, "phone_numbers/project_form.html", {"form": form, "project": project})


def _save_project(request: HttpRequest, form: ProjectForm) -> Project | None:
    """Save the form; a new token (or host, or ID) starts a connection check."""
    try:
        project = form.save(by=request.user)
    except IntegrityError:
        # Another admin saved the same Space and project ID a moment ago.
        form.add_error("project_id", "This Space already has this project in the portal.")
        return None
    if form.cleaned_data["token"] or {"space_host", "project_id"} & set(form.changed_data):
        _queue_connection_check(project)
    return project


def _queue_connection_check(project: Project) -> None:
    project.start_connection_check()
    check_project_connection.delay_on_commit(project.pk)


@require_POST
@permission_required("phone_numbers.change_project", raise_exception=True)
def project_check_connection(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=pk)
    _queue_connection_check(project)
    if request.htmx:
        return render(
            request, "phone_numbers/partials/project_connection.html", {"project": project}
        )
    return redirect("phone_numbers:project_detail", pk=project.pk)


@require_POST
@permission_required("phone_numbers.change_project", raise_exception=True)
def project_set_active(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=pk)
    project.is_active = request.POST.get("is_active") == "true"
    project.save(update_fields=["is_active", "updated_at"])
    if project.is_active:
        messages.success(request, f"Project “{project.name}” is active again.")
    else:
        messages.success(
            request,
            f"Project “{project.name}” is deactivated: nothing new can be imported into it.",
        )
    return redirect("phone_numbers:project_detail", pk=project.pk)
