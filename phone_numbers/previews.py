"""Import previews kept in the cache, and one large preview at a time per person.

Reading 50,000 numbers takes seconds of a web worker. Every page of a preview posts the whole
form again, so the preview is kept, by its input digest and its person, and its pages are cut
from it. Pressing Preview again reads the numbers again: some may have been imported since.
A person who starts many large previews at once (twenty tabs, a script) gets one at a time,
and the web workers stay free for everybody else.

The cache is Redis in production, shared by every gunicorn worker (portal/settings.py).
"""

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache

from phone_numbers import importing

# Long enough to page through a preview and confirm it; a confirm reads the input again anyway.
KEPT_SECONDS = 15 * 60
# Above this many lines a preview takes a noticeable share of a web worker (README, Benchmarks).
LARGE_PREVIEW_LINES = 1_000
# Longer than any preview may run (gunicorn's timeout is 30 s), so that the hold of a worker
# killed mid-preview ends by itself.
PREPARING_SECONDS = 60


class PreviewBusy(Exception):
    """Another large preview of the same person is still being read."""


def preview_for(
    user: AbstractBaseUser, digest: str, *, is_paging: bool, **arguments
) -> importing.Preview:
    """importing.preview(**arguments), or for paging the one kept for this person and digest.

    Raises PreviewBusy when the input is large and another large preview of the person's is
    being read at this moment.
    """
    key = f"import-preview:{user.pk}:{digest}"
    if is_paging and (kept := cache.get(key)) is not None:
        return kept
    is_large = len(arguments["lines"]) > LARGE_PREVIEW_LINES
    preparing = f"import-preview-preparing:{user.pk}"
    if is_large and not cache.add(preparing, digest, PREPARING_SECONDS):
        raise PreviewBusy(
            "A preview of yours is still being prepared (a large one, perhaps in another tab): "
            "wait a few seconds, then preview again."
        )
    try:
        preview = importing.preview(**arguments)
    finally:
        if is_large:
            cache.delete(preparing)
    cache.set(key, preview, KEPT_SECONDS)
    return preview
