"""The digit search through NumberSearchRow, the narrow copy PostgreSQL's triggers keep."""

import pytest
from django.db.models import Q
from django.http import QueryDict

from phone_numbers.forms import NumberSearchForm
from phone_numbers.models import ImportJob, NumberImport, NumberSearchRow
from phone_numbers.search import newest_ids, searched_digits, searched_fragments

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]


@pytest.fixture
def job(make_project, support_user):
    def make(project_name="Acme Corp", country="US"):
        project = make_project(
            name=project_name,
            space_host=f"{project_name.split()[0].lower()}.signalwire.com",
            default_country=country,
        )
        return ImportJob.objects.create(
            project=project,
            created_by=support_user,
            source="paste",
            number_type="longcode",
            capabilities=["voice"],
            input_digest="x",
        )

    return make


def add(job, numbers, status="imported"):
    return NumberImport.objects.bulk_create(
        NumberImport(
            job=job, project=job.project, number=number, number_type="longcode", status=status
        )
        for number in numbers
    )


def copied() -> set[tuple]:
    return set(NumberSearchRow.objects.values_list("pk", "project", "number", "status"))


def originals() -> set[tuple]:
    return set(NumberImport.objects.values_list("pk", "project", "number", "status"))


def test_a_search_text_is_a_number_unless_it_has_a_letter_and_tel_is_no_letter():
    assert searched_digits(" (415) 555 ") == "415555"
    assert searched_digits("tel:5550100") == "5550100"
    assert searched_digits("TEL:+1-415-555-0100") == "14155550100"
    assert searched_digits("Acme 415") is None
    assert searched_digits("--") == ""


def test_decimal_digits_of_any_script_are_read_as_digits_and_other_numerals_make_text_words():
    # Fullwidth, Arabic-Indic and Devanagari digits (category Nd) are digits, as the import's
    # phonenumbers reads them; superscripts, circled digits (No) and Roman numerals (Nl) are not.
    assert searched_digits("＋１ ４１５") == "1415"
    assert searched_digits("٤١٥-٥٥٥") == "415555"
    assert searched_digits("४१५") == "415"
    assert searched_digits("²²²") is None
    assert searched_digits("①②③④") is None
    assert searched_digits("415 Ⅻ") is None


def test_a_search_text_gives_its_digits_and_the_number_starts_it_means(make_project):
    make_project(default_country="GB")
    make_project(name="Globex Corp", space_host="globex.signalwire.com", default_country="US")

    assert searched_fragments("0044 20 7946") == ["0044207946", "+44207946"]
    # 011 is North America's international prefix, and 0114 is Sheffield's area code.
    assert searched_fragments("011 44 20 7946") == ["01144207946", "+44207946", "+441144207946"]
    assert searched_fragments("+44 (0)20 7946") == ["440207946", "+44207946"]
    assert searched_fragments("020 7946") == ["0207946", "+44207946"]
    # What the digits as typed find anyway is left out: here every US start holds them.
    assert searched_fragments("+44 20 7946") == ["44207946"]
    assert searched_fragments("1 415 555") == ["1415555"]
    assert searched_fragments("020") == ["020"]
    assert searched_fragments("+ (0)") == ["0"]  # no start: not every number
    assert searched_fragments("Acme 020") is None
    assert searched_fragments("--") == []


@pytest.mark.postgresql_only(
    reason="NumberSearchRow is kept by PostgreSQL's triggers (migration 0006); "
    "on SQLite it stays empty and searches read the number imports"
)
def test_the_copy_follows_every_insert_change_and_delete(job):
    acme, globex = job(), job("Globex Corp")
    add(acme, ["+14155550100", "+14155550101"])
    single = NumberImport.objects.create(
        job=globex, project=globex.project, number="+442079460000", number_type="longcode"
    )
    assert copied() == originals()
    assert len(copied()) == 3

    single.status = "failed"
    single.number = "+442079460001"
    single.save()
    NumberImport.objects.filter(job=acme).update(status="cancelled")
    NumberImport.objects.filter(pk=single.pk).update(queued_at=single.created_at)
    assert copied() == originals()
    assert {status for *_, status in copied()} == {"cancelled", "failed"}

    acme.delete()
    assert copied() == originals()
    assert len(copied()) == 1


def page(params: dict, start: int, size: int) -> list[str]:
    query = QueryDict(mutable=True)
    query.update(params)
    return [row.number for row in NumberSearchForm(query).page(start, size)]


@pytest.mark.parametrize("recent_rows", [1000, 3])
@pytest.mark.parametrize("text", ["4", "41", "415", "0415", "4155", "555-000", "(415) 555-0003"])
def test_a_digit_search_gives_the_same_rows_whichever_way_it_finds_them(
    job, monkeypatch, recent_rows, text
):
    # With a window of 3 rows the newest rows never hold a page: the index must find it.
    monkeypatch.setattr("phone_numbers.search.RECENT_ROWS", recent_rows)
    acme, globex = job(), job("Globex Corp")
    add(acme, [f"+1415555{index:04d}" for index in range(8)])
    add(acme, ["+12125550415", "+41555550000"])  # "415" at the end and at the start
    add(acme, ["+15500055500"])  # every run of four in "555000", but not in that order
    add(globex, [f"+1415555{index:04d}" for index in range(8)], status="failed")
    add(globex, [f"+3312345{index:04d}" for index in range(12)])  # newest, no "415"
    digits = "".join(char for char in text if char.isdigit())

    for params in [{"q": text}, {"q": text, "status": ""}, {"q": text, "project": acme.project.pk}]:
        narrowed = {name: value for name, value in params.items() if name != "q"}
        narrowed.setdefault("status", "imported")
        narrowed = {name: value for name, value in narrowed.items() if value}
        expected = list(
            NumberImport.objects.filter(number__contains=digits, **narrowed)
            .order_by("-pk")
            .values_list("number", flat=True)
        )
        assert expected, params

        assert page(params, 0, 3) == expected[:3], params
        assert page(params, 3, 3) == expected[3:6], params
        assert page(params, 0, 100) == expected, params


@pytest.mark.parametrize("recent_rows", [1000, 3])
@pytest.mark.parametrize(
    "text", ["0044 20 7946", "00 44 207", "020 794", "+44 (0)20 79", "+44 (0)2"]
)
def test_a_number_typed_from_its_start_gives_the_same_rows_whichever_way_they_are_found(
    job, monkeypatch, recent_rows, text
):
    # With a window of 3 rows the newest rows never hold a page: the index must find it.
    monkeypatch.setattr("phone_numbers.search.RECENT_ROWS", recent_rows)
    london = add(job("Globex UK", country="GB"), ["+442079460950", "+442079461111"])
    acme = job()
    add(acme, ["+12079460950", "+492079460950"])  # the digits after other country codes
    add(acme, [f"+3312345{index:04d}" for index in range(12)])  # newest, no match

    found = page({"q": text}, 0, 10)

    assert found == [number.number for number in reversed(london)]
    assert page({"q": text}, 1, 10) == found[1:]


@pytest.mark.parametrize("max_named", [50, 1, 0])
@pytest.mark.parametrize("text", ["acme", "HD-7", "PN-ACME", "nothing like it"])
def test_a_text_search_gives_the_same_rows_whichever_way_it_finds_them(
    job, monkeypatch, max_named, text
):
    # Up to MAX_NAMED projects and jobs, each is paged through its own index; beyond, the
    # plain OR. Matches by project name, ticket, sid and friendly name are interleaved, in
    # every status and type, so that each page mixes them.
    monkeypatch.setattr("phone_numbers.search.MAX_NAMED", max_named)
    acme, globex, initech = job(), job("Globex Corp"), job("Initech")
    ImportJob.objects.filter(pk__in=[globex.pk, initech.pk]).update(ticket="HD-7")
    for index in range(30):
        owner = [acme, globex, initech][index % 3]
        NumberImport.objects.create(
            job=owner,
            project=owner.project,
            number=f"+1415555{index:04d}",
            number_type="tollfree" if index % 5 in (1, 2) else "longcode",
            status=["imported", "failed", "imported", "pending"][index % 4],
            sid=f"PN-ACME-{index}" if index % 7 == 0 else f"PN{index}",
            friendly_name="ACME line" if index % 5 == 0 else "",
        )
    named = (
        Q(project__name__icontains=text)
        | Q(job__ticket__icontains=text)
        | Q(sid__icontains=text)
        | Q(friendly_name__icontains=text)
    )

    for params in [
        {"q": text},
        {"q": text, "status": ""},
        {"q": text, "status": "failed"},
        {"q": text, "number_type": "tollfree"},
        {"q": text, "project": globex.project.pk},
    ]:
        narrowed = {name: value for name, value in params.items() if name != "q"}
        narrowed.setdefault("status", "imported")
        narrowed = {name: value for name, value in narrowed.items() if value}
        expected = list(
            NumberImport.objects.filter(named, **narrowed)
            .order_by("-pk")
            .values_list("number", flat=True)
        )
        assert expected or text == "nothing like it" or len(params) > 1, params

        assert page(params, 0, 3) == expected[:3], params
        assert page(params, 3, 4) == expected[3:7], params
        assert page(params, 0, 100) == expected, params


def test_a_digit_search_with_a_filter_the_copy_lacks_reads_the_number_imports(job):
    acme = job()
    add(acme, ["+14155550100", "+14155550101"])
    tollfree = NumberImport.objects.create(
        job=acme,
        project=acme.project,
        number="+18005550100",
        number_type="tollfree",
        status="imported",
    )

    assert page({"q": "555 0100", "number_type": "tollfree"}, 0, 10) == [tollfree.number]


@pytest.mark.postgresql_only(
    reason="the index of four-digit runs (search.newest_ids) exists on PostgreSQL only"
)
def test_five_digits_or_more_must_be_in_the_number_in_that_order_not_only_as_runs_of_four(job):
    # "+12340002345" holds the runs 1234 and 2345 of "12345", but not "12345".
    [match, _] = add(job(), ["+14155512345", "+12340002345"])

    assert newest_ids(NumberSearchRow.objects.all(), ["12345"], 10) == [match.pk]
