import uuid

import pytest

from phone_numbers.forms import ProjectForm, normalise_space_host
from phone_numbers.models import Credential, Project

pytestmark = pytest.mark.both_databases


def valid_data(**overrides) -> dict:
    return {
        "name": "Acme Corp",
        "space_host": "acme.signalwire.com",
        "project_id": str(uuid.uuid4()),
        "default_country": "GB",
        "notes": "",
        "token": "PTvalid-token-abcd",
    } | overrides


@pytest.mark.parametrize(
    "typed",
    [
        "acme.signalwire.com",
        "  Acme.SignalWire.com ",
        "https://acme.signalwire.com/dashboard/phone_numbers",
        "https://acme.signalwire.com",
        "acme.signalwire.com/",
    ],
)
def test_space_host_is_reduced_to_the_bare_host(typed):
    assert normalise_space_host(typed) == "acme.signalwire.com"


@pytest.mark.parametrize(
    "typed", ["acme", "https://", "acme signalwire.com", "-acme.signalwire.com", "acme..com", ""]
)
def test_anything_but_a_host_is_rejected(typed):
    with pytest.raises(ValueError):
        normalise_space_host(typed)


@pytest.mark.django_db
def test_a_valid_form_saves_the_project_and_its_encrypted_token(admin_user):
    form = ProjectForm(valid_data(space_host="https://Acme.signalwire.com/x"))

    assert form.is_valid(), form.errors
    project = form.save(by=admin_user)

    assert project.space_host == "acme.signalwire.com"
    assert project.active_credential.token == "PTvalid-token-abcd"
    assert project.active_credential.created_by == admin_user


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("default_country", "ZZ", "Choose the country from the list."),
        ("project_id", "not-a-uuid", "Enter the project ID as a UUID"),
        ("space_host", "acme", "Enter the Space's host name"),
        ("token", "", "This field is required."),
        ("token", "PTtoken with space", "spaces or line breaks"),
        ("token", "PTtoken\nsecondline", "spaces or line breaks"),
        ("name", "", "This field is required."),
    ],
)
def test_bad_input_gets_a_message_beside_the_field_and_saves_nothing(field, value, message):
    form = ProjectForm(valid_data(**{field: value}))

    assert not form.is_valid()
    assert message in " ".join(form.errors[field])
    assert list(form.errors) == [field]
    assert not Project.objects.exists()
    assert not Credential.objects.exists()


@pytest.mark.django_db
def test_a_duplicate_project_is_named_beside_the_project_id(make_project):
    existing = make_project(name="Acme original")

    form = ProjectForm(
        valid_data(space_host=existing.space_host, project_id=str(existing.project_id))
    )

    assert not form.is_valid()
    assert "Acme original" in form.errors["project_id"][0]
    assert Project.objects.count() == 1


@pytest.mark.django_db
def test_the_same_project_id_in_another_space_is_allowed(make_project):
    existing = make_project()

    form = ProjectForm(
        valid_data(space_host="other.signalwire.com", project_id=str(existing.project_id))
    )

    assert form.is_valid(), form.errors


@pytest.mark.django_db
def test_a_blank_token_on_edit_keeps_the_stored_token(make_project, admin_user):
    project = make_project(token="PTkeep-this-token-7777")
    data = valid_data(project_id=str(project.project_id), token="", name="Acme renamed")

    form = ProjectForm(data, instance=project)
    assert form.is_valid(), form.errors
    form.save(by=admin_user)

    project.refresh_from_db()
    assert project.name == "Acme renamed"
    assert Credential.objects.count() == 1
    assert project.active_credential.token == "PTkeep-this-token-7777"


@pytest.mark.django_db
def test_the_token_field_never_renders_a_value(make_project):
    project = make_project(token="PTnever-rendered-token-5555")

    html = ProjectForm(valid_data(token="PTtyped-but-invalid x"), instance=project).as_div()

    assert "PTnever-rendered" not in html
    assert "PTtyped-but-invalid" not in html
    assert "…5555" in html
