"""Import previews kept in the cache, and one large preview at a time per person.

Reading 50,000 numbers takes seconds of a web worker. Every page of a preview posts the whole
form again, so each person's last preview is kept, with its input digest: its counts, and its
rows page by page, so that showing a page loads that page alone. A person who sends many large
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


@dataclass(frozen=True)
class _Kept:
    digest: str
    counts: Counts


def page_of(preview: Preview, number: str | None) -> Page:
    return Paginator(preview.rows, PAGE_SIZE).get_page(number)


def keep(user: AbstractBaseUser, digest: str, preview: Preview) -> None:
    """Keep the preview's counts and each of its pages, in place of the person's last one.

    One preview a person, a few MB at most: the cache (Redis, the broker's too) stays small
    however many previews someone makes.
    """
    if (earlier := cache.get(_key(user))) is not None:
        cache.delete_many(_page_keys(user, earlier).values())
    kept = _Kept(digest, Counts.of(preview))
    pages = Paginator(preview.rows, PAGE_SIZE)
    rows = {key: pages.page(number).object_list for number, key in _page_keys(user, kept).items()}
    # The head last: it says that the pages are there.
    cache.set_many(rows | {_key(user): kept}, KEPT_SECONDS)


def kept_page(
    user: AbstractBaseUser, digest: str, number: str | None
) -> tuple[Counts, Page] | None:
    """The counts and one page of the person's last preview, if it is the one of `digest`."""
    kept = cache.get(_key(user))
    if kept is None or kept.digest != digest:
        return None
    # Numbers standing for the lines give the page its place (number, first and last line).
    page = Paginator(range(kept.counts.lines), PAGE_SIZE).get_page(number)
    rows = cache.get(_page_key(user, digest, page.number))
    if rows is None:
        return None
    page.object_list = rows
    return kept.counts, page


def _key(user: AbstractBaseUser) -> str:
    return f"import-preview:{user.pk}"


def _page_key(user: AbstractBaseUser, digest: str, number: int) -> str:
    # The digest in the key: a page of another preview is never taken for this one's.
    return f"import-preview:{user.pk}:{digest}:{number}"


def _page_keys(user: AbstractBaseUser, kept: _Kept) -> dict[int, str]:
    numbers = Paginator(range(kept.counts.lines), PAGE_SIZE).page_range
    return {number: _page_key(user, kept.digest, number) for number in numbers}


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
