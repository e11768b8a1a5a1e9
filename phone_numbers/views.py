from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from phone_numbers import health


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
