import json
import math
import re

from axes.helpers import get_client_username
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required, permission_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from phone_numbers import audit, exports, health, importing, inventory, logins, previews
from phone_numbers.forms import (
    AuditFilterForm,
    EmailPreferenceForm,
    ImportForm,
    NumberSearchForm,
    ProjectForm,
    RejectJobForm,
    RetryNumberForm,
)
from phone_numbers.models import (
    RETRYABLE_CATEGORIES,
    AuditAction,
    AuditEntry,
    EmailPreference,
    FailureCategory,
    ImportJob,
    ImportStatus,
    InventorySync,
    NumberImport,
    Project,
    SpaceNumber,
)
from phone_numbers.tasks import check_project_connection
from phone_numbers.templatetags.portal import phone, thousands

PROJECT_SEARCH_MAX_LENGTH = 200
PREVIEW_PARTIAL = "phone_numbers/partials/import_preview.html"
INVENTORY_PARTIAL = "phone_numbers/partials/project_inventory.html"
# The preview's choice of one of a line's readings, or of a row's type (see with_choices).
_CHOICE_FIELD = re.compile(r"(?:reading|type)-(?P<line>[0-9]+)")
JOB_ROWS_PAGE_SIZE = 100
NOTHING_TO_RETRY = (
    "Nothing was retried: no failed number of this job can be mended by a retry. A number "
    "already in the project needs nothing; a rejected one needs “Edit and retry”."
)
NO_LONGER_AWAITING_APPROVAL = (
    "Nothing was done: the job is no longer waiting for approval (it was approved, rejected "
    "or cancelled meanwhile)."
)
JOBS_PAGE_SIZE = 50
PROJECT_JOBS_PAGE_SIZE = 20
PROJECT_NUMBERS_PAGE_SIZE = 50


NUMBERS_PAGE_SIZE = 50


@require_GET
@permission_required("phone_numbers.view_numberimport", raise_exception=True)
@vary_on_headers("HX-Request")
def home(request: HttpRequest) -> HttpResponse:
    """The numbers list: every number import, then every number only in a Space (imported
    by another route), searched and filtered from the URL."""
    search = NumberSearchForm(request.GET)
    page_number = _page_number(request)
    # One row more than shown says whether there is a next page, without counting a million.
    start = (page_number - 1) * NUMBERS_PAGE_SIZE
    imports, in_spaces = search.numbers_page(start, NUMBERS_PAGE_SIZE + 1)
    numbers = imports[:NUMBERS_PAGE_SIZE]
    space_numbers = in_spaces[: NUMBERS_PAGE_SIZE - len(numbers)]
    shown = len(numbers) + len(space_numbers)
    context = {
        "search": search,
        "numbers": numbers,
        "space_numbers": space_numbers,
        "page_number": page_number,
        "has_next": len(imports) + len(in_spaces) > NUMBERS_PAGE_SIZE,
        "first_shown": start + 1,
        "last_shown": start + shown,
        "query_string": _without_page(request),
    }
    if request.htmx:
        return render(request, "phone_numbers/partials/number_rows.html", context)
    # Its own ids: the search form on the same page has fields of the same names.
    context["import_form"] = ImportForm(auto_id="import-%s")
    return render(request, "phone_numbers/home.html", context)


def _say_where_duplicates_are(numbers: list[NumberImport]) -> None:
    """Give each number that failed as a duplicate `already_in`: the portal's import of it in
    the same Space (its own project's first), or None when the portal never imported it
    there, so the number is in the Space without the portal."""
    duplicates = [
        number
        for number in numbers
        if number.status == ImportStatus.FAILED
        and number.failure_category == FailureCategory.DUPLICATE
    ]
    if not duplicates:
        return
    imported = (
        NumberImport.objects.filter(
            number__in={number.number for number in duplicates},
            project__space_host__in={number.project.space_host for number in duplicates},
            status=ImportStatus.IMPORTED,
        )
        .select_related("project", "job")
        .order_by("-pk")
    )
    for number in duplicates:
        found = [
            other
            for other in imported
            if other.number == number.number
            and other.project.space_host == number.project.space_host
        ]
        found.sort(key=lambda other: other.project_id != number.project_id)
        number.already_in = found[0] if found else None


def _page_number(request: HttpRequest, name: str = "page") -> int:
    try:
        return max(1, min(int(request.GET.get(name, 1)), 10_000))
    except ValueError:
        return 1


def _project_search_text(request: HttpRequest, name: str) -> str:
    # PostgreSQL text cannot hold a NUL, and no project's name, host or notes has one.
    return request.GET.get(name, "").replace("\x00", "")[:PROJECT_SEARCH_MAX_LENGTH]


def _filters_as_typed(request: HttpRequest) -> dict[str, str]:
    """The URL's filters for the audit entry of an export.

    A NUL (which the forms refuse) becomes U+FFFD: PostgreSQL's JSON cannot store it, and the
    entry still shows that something unreadable was sent.
    """
    return {
        name.replace("\x00", "\ufffd"): value.replace("\x00", "\ufffd")
        for name, value in request.GET.items()
    }


def _without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@require_GET
@permission_required("phone_numbers.view_numberimport", raise_exception=True)
def number_export(request: HttpRequest) -> StreamingHttpResponse:
    """The current search as CSV, streamed: a million rows never sit in memory."""
    search = NumberSearchForm(request.GET)
    audit.record(
        request, AuditAction.NUMBERS_EXPORTED, changes={"filters": _filters_as_typed(request)}
    )
    numbers = search.filtered(NumberImport.objects.order_by("-pk"))
    # As on the page: the imports, then the numbers only in a Space.
    in_spaces = (search.space_numbers(), exports.SPACE_NUMBER_COLUMNS)
    return exports.csv_response(numbers, exports.NUMBER_COLUMNS, "numbers.csv", then=[in_spaces])


@require_GET
@permission_required("phone_numbers.view_numberimport", raise_exception=True)
def number_detail(request: HttpRequest, pk: int) -> HttpResponse:
    number = get_object_or_404(
        NumberImport.objects.select_related("project", "job__created_by"), pk=pk
    )
    _say_where_duplicates_are([number])
    space_number = number.space_numbers.order_by("-last_seen_at", "-pk").first()
    context = {
        "number": number,
        **_in_the_space(number.project, space_number),
        "differences": _differences(number, space_number),
        "attempts": number.attempt_log.all(),
        "story": audit.number_story(number),
        "other_imports": NumberImport.objects.filter(number=number.number)
        .exclude(pk=number.pk)
        .select_related("project", "job__created_by")
        .order_by("-pk")[:50],
        # SignalWire's JSON as JSON, not as Python's repr of it.
        "response_json": json.dumps(number.response, indent=2, sort_keys=True, ensure_ascii=False)
        if number.response
        else "",
    }
    return render(request, "phone_numbers/number_detail.html", context)


def _in_the_space(project: Project, space_number: SpaceNumber | None) -> dict:
    """What a number page says of the Space: its record as the project's last completed
    inventory sync listed it (or None: not listed), and that sync (None: no sync yet)."""
    last_sync = (
        project.inventory_syncs.filter(status=InventorySync.Status.COMPLETED)
        .order_by("-finished_at", "-pk")
        .first()
    )
    return {"space_number": space_number, "last_sync": last_sync}


def _differences(number: NumberImport, space_number: SpaceNumber | None) -> set[str]:
    """The fields in which the Space's record of an imported number differs from what the
    import recorded. SignalWire's record has no type (only toll-free numbers say so), so a
    type left blank there differs from nothing."""
    if space_number is None:
        return set()
    fields = {"friendly_name", "sid"}
    differing = {name for name in fields if getattr(number, name) != getattr(space_number, name)}
    if set(number.capabilities) != set(space_number.capabilities):
        differing.add("capabilities")
    if space_number.number_type and space_number.number_type != number.number_type:
        differing.add("number_type")
    return differing


@require_GET
# The inventory is read by whoever reads the portal's numbers: it is the same list, wider.
@permission_required("phone_numbers.view_numberimport", raise_exception=True)
def space_number_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A number in a project's Space as the last sync listed it; one the portal imported is
    shown on its import's page."""
    space_number = get_object_or_404(SpaceNumber.objects.select_related("project"), pk=pk)
    if space_number.number_import_id is not None:
        return redirect("phone_numbers:number_detail", space_number.number_import_id)
    context = {
        **_in_the_space(space_number.project, space_number),
        "other_imports": NumberImport.objects.filter(number=space_number.number)
        .select_related("project", "job__created_by")
        .order_by("-pk")[:50],
    }
    return render(request, "phone_numbers/space_number_detail.html", context)


@require_GET
@permission_required("phone_numbers.view_numberimport", raise_exception=True)
def number_where(request: HttpRequest) -> HttpResponse:
    """ "Where is this number?": every project of the portal that holds it, whatever its form:
    the portal's imports of it, and the Spaces that hold it as their last sync listed them."""
    text = request.GET.get("number", "")[: NumberSearchForm.MAX_SEARCH_LENGTH].strip()
    readings = importing.read_in_every_default_country(text) if text else {}
    numbers = (
        NumberImport.objects.filter(number__in=readings)
        .select_related("project", "job__created_by")
        .order_by("project__name", "-pk")
    )
    in_spaces = (
        SpaceNumber.objects.filter(number__in=readings)
        .select_related("project")
        .order_by("project__name", "-pk")
    )
    context = {"text": text, "readings": readings, "numbers": numbers, "in_spaces": in_spaces}
    return render(request, "phone_numbers/number_where.html", context)


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
    query = _project_search_text(request, "q")
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
    if request.htmx and request.htmx.target == f"project-{project.pk}-inventory":
        context |= inventory.last_sync_and_drift(project)
        return render(request, INVENTORY_PARTIAL, context)
    if request.htmx:
        return render(request, "phone_numbers/partials/project_connection.html", context)
    context |= inventory.last_sync_and_drift(project)
    context["has_unreadable_token"] = project.has_unreadable_token
    if request.user.has_perm("phone_numbers.view_importjob"):
        jobs = project.jobs.select_related("created_by").order_by("-created_at", "-pk")
        jobs_page = Paginator(jobs, PROJECT_JOBS_PAGE_SIZE).get_page(request.GET.get("jobs_page"))
        _show_counts(jobs_page)
        context["jobs_page"] = jobs_page
    if request.user.has_perm("phone_numbers.view_numberimport"):
        # One row more than shown says whether there is a next page, without counting them all.
        numbers_page = _page_number(request, "numbers_page")
        start = (numbers_page - 1) * PROJECT_NUMBERS_PAGE_SIZE
        numbers = list(
            project.numbers.select_related("job__created_by").order_by("-pk")[
                start : start + PROJECT_NUMBERS_PAGE_SIZE + 1
            ]
        )
        context.update(
            numbers=numbers[:PROJECT_NUMBERS_PAGE_SIZE],
            numbers_page=numbers_page,
            numbers_has_next=len(numbers) > PROJECT_NUMBERS_PAGE_SIZE,
        )
    # The page never decrypts a token: it only says whether the active one can be read.
    context["credentials"] = project.credentials.select_related("created_by", "revoked_by").defer(
        "token"
    )
    return render(request, "phone_numbers/project_detail.html", context)


def _show_counts(jobs_page) -> None:
    """Give each job of a page of jobs `listed_counts`, `shown_status` and `shown_status_text`,
    counting only these jobs' numbers."""
    jobs_page.object_list = list(jobs_page.object_list)
    counts = ImportJob.counts_of([job.pk for job in jobs_page.object_list])
    for job in jobs_page.object_list:
        job.listed_counts = counts[job.pk]
        job.shown_status = job.status_for(job.listed_counts)
        job.shown_status_text = job.status_text(job.listed_counts)


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
    is_new = form.instance.pk is None
    try:
        project = form.save(by=request.user)
    except IntegrityError:
        # Another admin saved the same Space and project ID a moment ago.
        form.add_error("project_id", "This Space already has this project in the portal.")
        return None
    audit.record_project_saved(request, form, project, is_new=is_new)
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
    audit.record(request, AuditAction.CONNECTION_CHECKED, project=project)
    if request.htmx:
        return render(
            request, "phone_numbers/partials/project_connection.html", {"project": project}
        )
    return redirect("phone_numbers:project_detail", pk=project.pk)


@require_POST
@permission_required("phone_numbers.change_project", raise_exception=True)
def project_sync_inventory(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=pk)
    sync = inventory.request_sync(project, InventorySync.Trigger.MANUAL, by=request.user)
    if sync is None:
        # The panel shows the running sync; a full page says why nothing new started.
        if not request.htmx:
            messages.info(request, "A sync of this project is already running.")
    else:
        audit.record(
            request,
            AuditAction.INVENTORY_SYNC_REQUESTED,
            project=project,
            target=f"Inventory sync {sync.pk}",
        )
    if request.htmx:
        context = {"project": project} | inventory.last_sync_and_drift(project)
        return render(request, INVENTORY_PARTIAL, context)
    return redirect(f"{reverse('phone_numbers:project_detail', args=[project.pk])}#inventory")


@require_POST
@permission_required("phone_numbers.change_project", raise_exception=True)
def project_set_active(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=pk)
    project.is_active = request.POST.get("is_active") == "true"
    project.save(update_fields=["is_active", "updated_at"])
    audit.record(
        request,
        AuditAction.PROJECT_REACTIVATED if project.is_active else AuditAction.PROJECT_DEACTIVATED,
        project=project,
    )
    if project.is_active:
        messages.success(request, f"Project “{project.name}” is active again.")
    else:
        messages.success(
            request,
            f"Project “{project.name}” is deactivated: nothing new can be imported into it.",
        )
    return redirect("phone_numbers:project_detail", pk=project.pk)


@require_http_methods(["GET", "POST"])
@permission_required("phone_numbers.add_importjob", raise_exception=True)
@vary_on_headers("HX-Request")
def import_new(request: HttpRequest) -> HttpResponse:
    """The import form; a POST previews the numbers, or with `confirm` starts the job."""
    form = ImportForm(
        request.POST or None, request.FILES or None, initial={"project": request.GET.get("project")}
    )
    if project_query := _project_search_text(request, "project_q"):
        form.fields["project"].queryset = Project.objects.active().search(project_query)
    context: dict = {"form": form}
    if request.method == "POST" and request.htmx and (page := _kept_preview_page(request)):
        return render(request, PREVIEW_PARTIAL, page)
    if request.method == "POST":
        try:
            with previews.one_at_a_time(request.user, is_large=_is_large_input(request)):
                if form.is_valid() and (started := _preview_or_start(request, form, context)):
                    return started
        except previews.PreviewBusy as exc:
            if request.htmx:
                # Answered before the input is read, so without the form's errors.
                return render(request, PREVIEW_PARTIAL, {"refusal": str(exc)})
            context["refusal"] = str(exc)
    if request.htmx and request.method == "POST":
        return render(request, PREVIEW_PARTIAL, context)
    return render(request, "phone_numbers/import_form.html", context)


def _kept_preview_page(request: HttpRequest) -> dict | None:
    """A page of the preview shown to this person, without reading the input again.

    A page button sends the digest of the preview it belongs to. Input changed since then is
    not seen until Preview is pressed; a confirm compares the digest with the input again.
    """
    page = request.POST.get("page")
    digest = request.POST.get("preview_digest", "")
    return _kept_page_context(request, digest, page) if page else None


def _kept_page_context(request: HttpRequest, digest: str, page: str) -> dict | None:
    if kept := previews.kept_page(request.user, digest, page):
        counts, preview_page = kept
        return {
            "preview_counts": counts,
            "preview_page": preview_page,
            "digest": digest,
            "carried_choices": _carried_choices(request, preview_page),
        }
    return None


def _carried_choices(request: HttpRequest, page) -> list[tuple[str, str]]:
    """The choices made in the preview (a reading, a type) for lines on other pages: sent
    again as hidden fields, so that paging keeps them until the confirm."""
    shown = {str(row.line_number) for row in page.object_list}
    return [
        (name, value)
        for name, value in request.POST.items()
        if value and (match := _CHOICE_FIELD.fullmatch(name)) and match.group("line") not in shown
    ]


def _is_large_input(request: HttpRequest) -> bool:
    pasted = len(request.POST.get("numbers", "").encode())
    return pasted + sum(upload.size for upload in request.FILES.values()) > (
        previews.LARGE_INPUT_BYTES
    )


def _preview_or_start(request: HttpRequest, form: ImportForm, context: dict) -> HttpResponse | None:
    """Start the job if the preview is confirmed, else add the preview to the context."""
    data = form.cleaned_data
    arguments = {
        "project": data["project"],
        # The choices made in the preview are part of the input: a changed choice is a
        # changed preview, which the confirm must match.
        "lines": importing.with_choices(data["lines"], request.POST),
        "number_type": data["number_type"],
        "capabilities": data["capabilities"],
    }
    digest = importing.input_digest(**arguments)
    confirmed = request.POST.get("confirm")
    if confirmed == digest:
        try:
            job = importing.start_job(
                **arguments,
                created_by=request.user,
                source=data["source"],
                ticket=data["ticket"],
            )
        except importing.ImportRefused as exc:
            context["refusal"] = str(exc)
        else:
            audit.record_job_confirmed(request, job)
            if request.htmx:
                return HttpResponseClientRedirect(job.get_absolute_url())
            return redirect(job)
    elif confirmed:
        context["refusal"] = (
            "The numbers or choices changed after the preview: check the preview below, "
            "then confirm again."
        )
    page = request.POST.get("page")
    # Pressing Preview reads the numbers again: some may have been imported since.
    if page and (kept := _kept_page_context(request, digest, page)):
        context.update(kept)
        return None
    preview = importing.preview(**arguments)
    previews.keep(request.user, digest, preview)
    if not page:
        audit.record_preview(request, data["project"], preview, digest)
    preview_page = previews.page_of(preview, page)
    context.update(
        preview=preview,
        preview_counts=previews.Counts.of(preview),
        preview_page=preview_page,
        digest=digest,
        carried_choices=_carried_choices(request, preview_page),
    )
    return None


@require_GET
@permission_required("phone_numbers.view_importjob", raise_exception=True)
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = ImportJob.objects.select_related("project", "created_by").order_by("-created_at", "-pk")
    page = Paginator(jobs, JOBS_PAGE_SIZE).get_page(request.GET.get("page"))
    _show_counts(page)
    return render(request, "phone_numbers/job_list.html", {"page": page})


@require_GET
@permission_required("phone_numbers.view_importjob", raise_exception=True)
@vary_on_headers("HX-Request")
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob.objects.select_related("project", "created_by"), pk=pk)
    status_filter = request.GET.get("status", "")
    numbers = job.numbers.all()
    if status_filter in ImportStatus.values:
        numbers = numbers.filter(status=status_filter)
    counts = job.counts()
    paginator = Paginator(numbers.select_related("project"), JOB_ROWS_PAGE_SIZE)
    # The counts say how many rows there are: no second count of a large job's numbers.
    shown = status_filter if status_filter in ImportStatus.values else "total"
    paginator.count = counts[shown]
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    _say_where_duplicates_are(page.object_list)
    context = {
        "job": job,
        "counts": counts,
        "job_status": job.status_for(counts),
        "job_status_text": job.status_text(counts),
        "finished": counts["total"] - counts["pending"] - counts["submitting"],
        "status_filter": status_filter,
        "statuses": ImportStatus.choices,
        "page": page,
        "has_retryable": job.numbers.filter(
            status=ImportStatus.FAILED, failure_category__in=RETRYABLE_CATEGORIES
        ).exists(),
        "may_approve": job.is_awaiting_approval and job.may_be_approved_by(request.user),
        "reject_form": RejectJobForm(auto_id=f"job-{job.pk}-reject-%s"),
    }
    if request.htmx:
        return render(request, "phone_numbers/partials/job_live.html", context)
    return render(request, "phone_numbers/job_detail.html", context)


@require_POST
@permission_required("phone_numbers.change_importjob", raise_exception=True)
def job_retry_failed(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=pk)
    failed_before_retry = audit.failure_counts(job)
    try:
        restarted = importing.retry_failed(job)
    except importing.ImportRefused as exc:
        messages.error(request, str(exc))
        return redirect(job)
    if not restarted:
        # Nothing happened, so nothing goes into the trail (the button is not offered then).
        messages.info(request, NOTHING_TO_RETRY)
        return redirect(job)
    audit.record(
        request,
        AuditAction.JOB_RETRIED,
        job=job,
        changes={"failed_before_retry": failed_before_retry},
    )
    messages.success(
        request,
        ngettext(
            "%(count)s failed number is being retried.",
            "%(count)s failed numbers are being retried.",
            restarted,
        )
        % {"count": thousands(restarted)},
    )
    return redirect(job)


@require_POST
@permission_required("phone_numbers.change_importjob", raise_exception=True)
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=pk)
    cancelled = importing.cancel_pending(job)
    audit.record(
        request,
        AuditAction.JOB_CANCELLED,
        job=job,
        changes={"cancelled": cancelled},
    )
    messages.success(
        request,
        ngettext(
            "%(count)s number not yet sent was cancelled.",
            "%(count)s numbers not yet sent were cancelled.",
            cancelled,
        )
        % {"count": thousands(cancelled)},
    )
    if checking := job.numbers.filter(status=ImportStatus.PENDING, needs_lookup=True).count():
        messages.info(
            request,
            ngettext(
                "%(count)s number may already be in the Space (an earlier request may have "
                "imported it): it is checked on SignalWire first, then shown as imported or "
                "cancelled.",
                "%(count)s numbers may already be in the Space (an earlier request may have "
                "imported them): they are checked on SignalWire first, then shown as imported "
                "or cancelled.",
                checking,
            )
            % {"count": thousands(checking)},
        )
    return redirect(job)


@require_POST
@permission_required("phone_numbers.pause_importjob", raise_exception=True)
def job_pause(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=pk)
    job.pause(f"Paused by {request.user.get_username()}.")
    audit.record(request, AuditAction.JOB_PAUSED, job=job)
    messages.success(request, "The job is paused: nothing more is sent until it is resumed.")
    return redirect(job)


@require_POST
@permission_required("phone_numbers.pause_importjob", raise_exception=True)
def job_resume(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=pk)
    try:
        importing.resume(job)
    except importing.ImportRefused as exc:
        messages.error(request, str(exc))
    else:
        audit.record(request, AuditAction.JOB_RESUMED, job=job)
        messages.success(request, "The job is running again.")
    return redirect(job)


@require_POST
@permission_required("phone_numbers.approve_importjob", raise_exception=True)
def job_approve(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob.objects.select_related("project"), pk=pk)
    _check_may_approve(request, job)
    try:
        approved = importing.approve(job, request.user)
    except importing.ImportRefused as exc:
        messages.error(request, f"The job was not approved: {exc}")
        return redirect(job)
    if approved:
        audit.record(request, AuditAction.JOB_APPROVED, job=job)
        messages.success(request, "Approved: the job's numbers are being imported.")
    else:
        messages.error(request, NO_LONGER_AWAITING_APPROVAL)
    return redirect(job)


@require_POST
@permission_required("phone_numbers.approve_importjob", raise_exception=True)
def job_reject(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob.objects.select_related("project"), pk=pk)
    _check_may_approve(request, job)
    form = RejectJobForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["reason"]))
        return redirect(job)
    reason = form.cleaned_data["reason"]
    if job.reject(request.user, reason):
        audit.record(request, AuditAction.JOB_REJECTED, job=job, changes={"reason": reason})
        messages.success(request, "Rejected: the job is cancelled and nothing was sent.")
    else:
        messages.error(request, NO_LONGER_AWAITING_APPROVAL)
    return redirect(job)


def _check_may_approve(request: HttpRequest, job: ImportJob) -> None:
    # Four eyes: the permission alone would let an admin approve their own job.
    if not job.may_be_approved_by(request.user):
        raise PermissionDenied("Only an admin who did not start a job may approve or reject it.")


@require_http_methods(["GET", "POST"])
@permission_required("phone_numbers.change_numberimport", raise_exception=True)
@vary_on_headers("HX-Request")
def number_retry(request: HttpRequest, pk: int) -> HttpResponse:
    number_import = get_object_or_404(
        NumberImport.objects.select_related("job", "job__project"), pk=pk
    )
    if request.method == "GET":
        # The job page links each failed row here and swaps this form in only when it is
        # opened: a hundred forms rendered on every poll were most of the page's time.
        context = {
            "number": number_import,
            "job": number_import.job,
            "cannot_retry": _why_not_retryable(number_import),
        }
        if request.htmx:
            return render(request, "phone_numbers/partials/number_retry.html", context)
        return render(request, "phone_numbers/number_retry.html", context)
    if number_import.failure_category == FailureCategory.DUPLICATE:
        messages.error(
            request,
            f"{number_import.number} was not retried: it is already in the project, so a "
            "retry cannot import it again.",
        )
        return redirect(number_import.job)
    form = RetryNumberForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("capabilities", ["Check the choices."])))
        return redirect(number_import.job)
    try:
        restarted = importing.retry_number(
            number_import, form.cleaned_data["number_type"], form.cleaned_data["capabilities"]
        )
    except importing.ImportRefused as exc:
        messages.error(request, f"{phone(number_import.number)} was not retried: {exc}")
        return redirect(number_import.job)
    if restarted:
        audit.record_number_retry(request, number_import, form.cleaned_data)
        messages.success(request, f"{phone(number_import.number)} is being retried.")
    else:
        messages.error(
            request,
            f"{phone(number_import.number)} was not retried: it is not failed any more, or it is "
            "already being imported by another job.",
        )
    return redirect(number_import.job)


def _why_not_retryable(number_import: NumberImport) -> str:
    """Why this number cannot be edited and retried, in words; empty if it can."""
    if number_import.failure_category == FailureCategory.DUPLICATE:
        return "It is already in the project, so a retry cannot import it again."
    if number_import.status != ImportStatus.FAILED:
        return f"It is {number_import.get_status_display().lower()}, not failed: nothing to retry."
    if number_import.job.cancelled_at:
        return "Its job was cancelled, so nothing of it is sent again."
    return ""


@require_GET
@permission_required("phone_numbers.view_importjob", raise_exception=True)
def job_export(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    job = get_object_or_404(ImportJob, pk=pk)
    audit.record(request, AuditAction.JOB_EXPORTED, job=job)
    return exports.csv_response(
        job.numbers.order_by("pk"), exports.JOB_COLUMNS, f"import-job-{job.pk}.csv"
    )


@require_GET
@permission_required("phone_numbers.view_importjob", raise_exception=True)
def job_failed_export(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The job's failed numbers as a CSV that New import reads as it is, to fix and send again."""
    job = get_object_or_404(ImportJob, pk=pk)
    audit.record(request, AuditAction.JOB_EXPORTED, job=job, changes={"rows": "failed"})
    return exports.csv_response(
        job.numbers.filter(status=ImportStatus.FAILED).order_by("pk"),
        exports.FAILED_ROW_COLUMNS,
        f"import-job-{job.pk}-failed.csv",
    )


AUDIT_PAGE_SIZE = 100


@require_GET
@permission_required("phone_numbers.view_auditentry", raise_exception=True)
def audit_list(request: HttpRequest) -> HttpResponse:
    """Who did what, newest first. Pages go by entry id, so no page counts the whole table."""
    filters = AuditFilterForm(request.GET)
    entries = filters.filtered(AuditEntry.objects.select_related("project").order_by("-pk"))
    if before := _entry_id(request.GET.get("before", "")):
        entries = entries.filter(pk__lt=before)
    rows = list(entries[: AUDIT_PAGE_SIZE + 1])
    query = request.GET.copy()
    query.pop("before", None)
    context = {
        "filters": filters,
        "entries": rows[:AUDIT_PAGE_SIZE],
        "older_than": rows[AUDIT_PAGE_SIZE - 1].pk if len(rows) > AUDIT_PAGE_SIZE else None,
        "is_first_page": not before,
        "query": query.urlencode(),
    }
    return render(request, "phone_numbers/audit_list.html", context)


def _entry_id(text: str) -> int | None:
    # The portal writes this id into its own "Older" link: up to 19 ASCII digits (a bigint).
    # `isdigit` alone would pass "²", which `int` cannot read, and `int` refuses 4,301 digits.
    return int(text) if re.fullmatch(r"[0-9]{1,19}", text) else None


@require_GET
@permission_required("phone_numbers.view_auditentry", raise_exception=True)
def audit_export(request: HttpRequest) -> StreamingHttpResponse:
    """The audit page's current filter as CSV, streamed."""
    filters = AuditFilterForm(request.GET)
    entries = filters.filtered(AuditEntry.objects.select_related("project").order_by("-pk"))
    audit.record(
        request, AuditAction.AUDIT_EXPORTED, changes={"filters": _filters_as_typed(request)}
    )
    return exports.csv_response(entries, exports.AUDIT_COLUMNS, "audit.csv")


@login_not_required
def admin_login(request: HttpRequest) -> HttpResponse:
    """The Django admin's login page, for visitors. Someone logged in without the admin's
    rights (Support) gets the portal's 403 page instead of a login form saying "not
    authorized", which reads as if logging in again would help."""
    if request.user.is_authenticated and not admin.site.has_permission(request):
        raise PermissionDenied
    return admin.site.login(request)


class LoginView(auth_views.LoginView):
    """Django's login page; a good login also gives the browser its device cookie, which
    spares it the per-username slowdown (phone_numbers.logins)."""

    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        logins.remember_device(response, form.get_user())
        return response


def login_locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """django-axes' answer to a refused login: the login page, saying when to try again."""
    retry_at = logins.locked_until(request, get_client_username(request, credentials))
    wait = retry_at - timezone.now() if retry_at else settings.AXES_COOLOFF_TIME
    context = {
        "form": AuthenticationForm(request),
        "locked_out_minutes": max(1, math.ceil(wait.total_seconds() / 60)),
        "retry_at": retry_at,
        "next": request.POST.get("next", ""),
    }
    return render(request, "registration/login.html", context, status=429)


@require_http_methods(["GET", "POST"])
def email_preferences(request: HttpRequest) -> HttpResponse:
    """Each person's own choice of job emails: every role has one, so no permission but a login."""
    preference = EmailPreference.objects.filter(user=request.user).first() or EmailPreference(
        user=request.user
    )
    # Not `request.POST or None`: an unticked box posts nothing, and that is a choice too.
    form = EmailPreferenceForm(
        request.POST if request.method == "POST" else None, instance=preference
    )
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(
            request,
            "You will get emails about import jobs."
            if form.instance.wants_job_emails
            else "You will get no more emails about import jobs.",
        )
        return redirect("phone_numbers:email_preferences")
    return render(request, "phone_numbers/email_preferences_form.html", {"form": form})
