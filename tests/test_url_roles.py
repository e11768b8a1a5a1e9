"""Every URL pattern of the project, walked: who may reach it is decided in the views.

ACCESS classifies every named pattern of the portal. A new pattern that it does not name fails
`test_every_url_pattern_is_classified`: add it to the table with the role it needs.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from phone_numbers.models import SpaceNumber

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

PUBLIC = "public"  # no login: the login page, the load balancer's probe, the icon
ANY_ROLE = "any role"  # a login with the Support role is enough
ADMINS_ONLY = "admins only"  # needs a permission that Support lacks: Support gets 403

# name → (who may reach it, which object its <pk> is, if it takes one)
ACCESS = {
    "login": (PUBLIC, None),
    # The admin's login for visitors; Support, logged in, gets 403 there (test_views_pages.py).
    "admin_login": (PUBLIC, None),
    "logout": (ANY_ROLE, None),
    "password_change": (ANY_ROLE, None),
    "password_change_done": (ANY_ROLE, None),
    "phone_numbers:email_preferences": (ANY_ROLE, None),
    "phone_numbers:healthz": (PUBLIC, None),
    "favicon": (PUBLIC, None),
    "phone_numbers:home": (ANY_ROLE, None),
    "phone_numbers:project_list": (ANY_ROLE, None),
    "phone_numbers:project_detail": (ANY_ROLE, "project"),
    "phone_numbers:project_create": (ADMINS_ONLY, None),
    "phone_numbers:project_edit": (ADMINS_ONLY, "project"),
    "phone_numbers:project_check_connection": (ADMINS_ONLY, "project"),
    "phone_numbers:project_set_active": (ADMINS_ONLY, "project"),
    "phone_numbers:project_sync_inventory": (ADMINS_ONLY, "project"),
    "phone_numbers:import_new": (ANY_ROLE, None),
    "phone_numbers:job_list": (ANY_ROLE, None),
    "phone_numbers:job_detail": (ANY_ROLE, "job"),
    "phone_numbers:job_retry_failed": (ANY_ROLE, "job"),
    "phone_numbers:job_cancel": (ANY_ROLE, "job"),
    "phone_numbers:job_pause": (ADMINS_ONLY, "job"),
    "phone_numbers:job_resume": (ADMINS_ONLY, "job"),
    "phone_numbers:job_approve": (ADMINS_ONLY, "job"),
    "phone_numbers:job_reject": (ADMINS_ONLY, "job"),
    "phone_numbers:job_export": (ANY_ROLE, "job"),
    "phone_numbers:job_failed_export": (ANY_ROLE, "job"),
    "phone_numbers:number_retry": (ANY_ROLE, "number"),
    "phone_numbers:number_detail": (ANY_ROLE, "number"),
    "phone_numbers:number_export": (ANY_ROLE, None),
    "phone_numbers:number_where": (ANY_ROLE, None),
    "phone_numbers:space_number_detail": (ANY_ROLE, "space_number"),
    "phone_numbers:audit_list": (ADMINS_ONLY, None),
    "phone_numbers:audit_export": (ADMINS_ONLY, None),
}
# Django's admin guards itself: staff only, everyone else goes to its own login page. Every
# pattern under /admin/ is walked, with these sample values for its arguments.
ADMIN_NAMESPACE = "admin"
# Its login, and its logout (which only ends the visitor's own session).
ADMIN_UNGUARDED = {"admin:login", "admin:logout"}
ADMIN_SAMPLE_KWARGS = {
    "app_label": "phone_numbers",
    "object_id": "1",
    "id": "1",
    "content_type_id": "1",
    "url": "anything/",
}


def walk(resolver=None, namespace: str = ""):
    """(qualified name or None, pattern) for every URL pattern, depth first."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}{pattern.namespace}:"
            yield from walk(pattern, inner)
        elif isinstance(pattern, URLPattern):
            yield (namespace + pattern.name if pattern.name else None), namespace, pattern


def portal_patterns():
    return [
        (name, namespace)
        for name, namespace, _ in walk()
        if not namespace.startswith(f"{ADMIN_NAMESPACE}:")
    ]


def admin_urls() -> list[str]:
    urls = []
    for name, namespace, pattern in walk():
        if not namespace.startswith(f"{ADMIN_NAMESPACE}:") or name is None:
            continue
        if name in ADMIN_UNGUARDED:
            continue
        arguments = list(pattern.pattern.regex.groupindex)
        urls.append(reverse(name, kwargs={key: ADMIN_SAMPLE_KWARGS[key] for key in arguments}))
    return urls


@pytest.fixture
def objects(project_job_and_number) -> dict:
    # A number only in the project's Space, as an inventory sync lists one.
    space_number = SpaceNumber.objects.create(
        project=project_job_and_number["project"],
        sid="PN0001",
        number="+14155550199",
        first_seen_at=timezone.now(),
        last_seen_at=timezone.now(),
    )
    return {**project_job_and_number, "space_number": space_number}


def url_for(name: str, objects: dict) -> str:
    _, argument = ACCESS[name]
    return reverse(name, args=[objects[argument].pk] if argument else [])


def test_every_url_pattern_is_classified():
    patterns = portal_patterns()

    unnamed = [namespace for name, namespace in patterns if name is None]
    unclassified = sorted({name for name, _ in patterns if name} - set(ACCESS))
    assert not unnamed, "give every URL pattern a name, and classify it in ACCESS"
    assert not unclassified, f"classify these URL patterns in ACCESS: {unclassified}"
    assert len(admin_urls()) > 20


def test_an_anonymous_visitor_is_sent_to_login_from_every_page_get_and_post(client, objects):
    login = reverse("login")

    for name, (access, _) in ACCESS.items():
        if access == PUBLIC:
            continue
        url = url_for(name, objects)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code == 302, (method, url)
            assert response["Location"] == f"{login}?next={url}", (method, url)


def test_support_gets_403_from_every_admin_only_view_get_and_post(client, support_user, objects):
    client.force_login(support_user)

    for name, (access, _) in ACCESS.items():
        if access != ADMINS_ONLY:
            continue
        url = url_for(name, objects)
        statuses = {method: getattr(client, method)(url).status_code for method in ("get", "post")}
        # A method the view never accepts is refused before the role is even looked at.
        assert set(statuses.values()) <= {403, 405}, (url, statuses)
        assert 403 in statuses.values(), (url, statuses)


def test_support_reaches_every_any_role_page(client, support_user, objects):
    client.force_login(support_user)

    for name, (access, _) in ACCESS.items():
        if access != ANY_ROLE or name == "logout":
            continue
        url = url_for(name, objects)
        assert client.get(url).status_code in {200, 405}, url


def test_anonymous_and_support_reach_nothing_of_the_django_admin_but_its_login(
    client, support_user
):
    # The admin's own login, or the portal's (whichever answers first: both end in a login).
    logins = (reverse("admin:login"), reverse("login"))

    for user in (None, support_user):
        if user:
            client.force_login(user)
        for url in admin_urls():
            for method in ("get", "post"):
                response = getattr(client, method)(url)
                assert response.status_code == 302, (user, method, url)
                assert response["Location"].startswith(logins), (user, method, url)
