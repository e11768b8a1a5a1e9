import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

# The Django admin's login (admin_login answers it first) is public like the portal's own.
PUBLIC_URL_NAMES = {"login", "admin_login", "phone_numbers:healthz", "favicon"}


def named_urls_without_arguments(resolver=None, namespace=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue
            prefix = f"{pattern.namespace}:" if pattern.namespace else namespace
            yield from named_urls_without_arguments(pattern, prefix)
        elif isinstance(pattern, URLPattern) and pattern.name and not pattern.pattern.regex.groups:
            yield namespace + pattern.name


def test_every_page_but_login_and_healthz_sends_an_anonymous_visitor_to_login(client):
    names = set(named_urls_without_arguments())
    assert {"phone_numbers:home", "logout", "password_change"} <= names

    for name in sorted(names - PUBLIC_URL_NAMES):
        url = reverse(name)
        response = client.get(url)
        assertRedirects(response, f"{reverse('login')}?next={url}", fetch_redirect_response=False)


def test_the_favicon_is_served_to_anyone_for_the_pages_that_name_none(client):
    response = client.get("/favicon.ico", follow=True)

    assertRedirects(response, "/static/favicon.svg")
    assert response.status_code == 200


def test_anonymous_visitor_is_sent_to_the_django_admin_login(client):
    response = client.get(reverse("admin:index"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_login_page_renders_for_anonymous_visitor(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assertContains(response, 'name="username"')
    assertContains(response, 'name="password"')


def test_logging_in_lands_on_the_numbers_page(client, support_user):
    response = client.post(
        reverse("login"), {"username": "sam", "password": "support-pass-1"}, follow=True
    )

    assertRedirects(response, reverse("phone_numbers:home"))
    assertContains(response, "sam")
    assertContains(response, "<h1>Numbers</h1>", html=True)


def test_wrong_password_keeps_the_visitor_on_the_login_page_with_a_message(client, support_user):
    response = client.post(reverse("login"), {"username": "sam", "password": "wrong"})

    assert response.status_code == 200
    assertContains(response, "Please enter a correct username and password")
    assert "_auth_user_id" not in client.session


def test_logging_out_ends_the_session(client, support_user):
    client.force_login(support_user)

    response = client.post(reverse("logout"))

    assertRedirects(response, reverse("login"), fetch_redirect_response=False)
    assert client.get(reverse("phone_numbers:home")).status_code == 302


def test_base_layout_puts_the_csrf_token_in_htmx_headers_and_loads_htmx_locally(
    client, support_user
):
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:home"))

    token = response.context["csrf_token"]
    assertContains(response, f'hx-headers=\'{{"X-CSRFToken": "{token}"}}\'')
    assertContains(response, "/static/django_htmx/htmx-2.min.js")
    assertContains(response, "/static/css/portal.css")


def test_support_user_sees_no_admin_link_but_an_admin_does(client, support_user, admin_user):
    admin_link = reverse("admin:index")

    client.force_login(support_user)
    assertNotContains(client.get(reverse("phone_numbers:home")), admin_link)
    client.force_login(admin_user)
    assertContains(client.get(reverse("phone_numbers:home")), admin_link)


def test_pages_carry_a_content_security_policy_without_inline_script(client, support_user):
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:home"))

    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert response["X-Frame-Options"] == "DENY"


def test_password_change_works_for_a_support_user(client, support_user):
    client.force_login(support_user)

    response = client.post(
        reverse("password_change"),
        {
            "old_password": "support-pass-1",
            "new_password1": "a-new-long-passphrase-42",
            "new_password2": "a-new-long-passphrase-42",
        },
    )

    assertRedirects(response, reverse("password_change_done"))
    support_user.refresh_from_db()
    assert support_user.check_password("a-new-long-passphrase-42")


def test_forbidden_and_not_found_pages_keep_the_portal_around_them(client, support_user):
    client.force_login(support_user)

    forbidden = client.get(reverse("phone_numbers:project_create"))
    missing = client.get("/no/such/page/")

    assert forbidden.status_code == 403
    assertContains(forbidden, "ask an admin", status_code=403)
    assertContains(forbidden, 'aria-label="Main"', status_code=403)
    assert missing.status_code == 404
    assertContains(missing, "nothing at this address", status_code=404)
