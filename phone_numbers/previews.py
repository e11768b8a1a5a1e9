"""Import previews kept in the cache, and one large preview at a time per person.

Reading 50,000 numbers takes seconds of a web worker. Every page of a preview posts the whole
form again, so the preview is kept, by its person and input digest: its counts, and its rows
page by page, so that showing a page loads that page alone. A person who sends many large
previews at once (twenty tabs, a script) is answered at once from the second on, before the
input is read, so the web workers stay free for everybody else.

The cache is Redis in production, shared by every gunicorn worker (portal/settings.py).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.paginator import Page, Paginator

from phone_numbers.importing import Preview

PAGE_SIZE = 100
# Long enough to page through a preview and confirm it; a confirm reads the input again anyway.
KEPT_SECONDS = 15 * 60
# About 1,500 numbers as people write them: reading more takes a noticeable share of a web
# worker (README, How an import runs).
LARGE_INPUT_BYTES = 20_000
# Longer than any request may run (gunicorn's timeout is 30 s), so that the hold of a worker
# killed mid-preview ends by itself.
HOLD_SECONDS = 60


class PreviewBusy(Exception):
    """Another large preview of the same person is still being read."""


@dataclass(frozen=True)
class Counts:
    """What the head of a preview says: its lines, how many can be imported, how many not."""

    lines: int
    importable: int
    rejected: int

    @classmethod
    def of(cls, preview: Preview) -> "Counts":
        return cls(len(preview.rows), len(preview.importable), preview.rejected_count)


def page_of(preview: Preview, number: str | None) -> Page:
    return Paginator(preview.rows, PAGE_SIZE).get_page(number)


def keep(user: AbstractBaseUser, digest: str, preview: Preview) -> None:
    """Keep the preview's counts and each of its pages."""
    key = _key(user, digest)
    pages = Paginator(preview.rows, PAGE_SIZE)
    kept = {f"{key}:{number}": pages.page(number).object_list for number in pages.page_range}
    # The counts last: they say that the pages are there.
    cache.set_many(kept | {key: Counts.of(preview)}, KEPT_SECONDS)


def kept_page(
    user: AbstractBaseUser, digest: str, number: str | None
) -> tuple[Counts, Page] | None:
    """The counts and one page of the preview this person was shown, while it is kept."""
    key = _key(user, digest)
    counts = cache.get(key) if digest else None
    if counts is None:
        return None
    # Numbers standing for the lines give the page its place (number, first and last line).
    page = Paginator(range(counts.lines), PAGE_SIZE).get_page(number)
    rows = cache.get(f"{key}:{page.number}")
    if rows is None:
        return None
    page.object_list = rows
    return counts, page


def _key(user: AbstractBaseUser, digest: str) -> str:
    return f"import-preview:{user.pk}:{digest}"


@contextmanager
def one_at_a_time(user: AbstractBaseUser, *, is_large: bool) -> Iterator[None]:
    """Hold the person's one large preview while the block runs; raise PreviewBusy if taken."""
    if not is_large:
        yield
        return
    hold = f"import-preview-hold:{user.pk}"
    if not cache.add(hold, True, HOLD_SECONDS):
        raise PreviewBusy(
            "A preview of yours is still being prepared (a large one, perhaps in another tab): "
            "wait a few seconds, then preview again."
        )
    try:
        yield
    finally:
        cache.delete(hold)
