"""Import previews kept in the cache, and one large preview at a time per person.

Reading 50,000 numbers takes seconds of a web worker. Every page of a preview posts the whole
form again, so the preview is kept, by its person and input digest, and its pages are cut from
it. A person who sends many large previews at once (twenty tabs, a script) is answered at once
from the second on, before the input is read, so the web workers stay free for everybody else.

The cache is Redis in production, shared by every gunicorn worker (portal/settings.py).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache

from phone_numbers.importing import Preview

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


def kept(user: AbstractBaseUser, digest: str) -> Preview | None:
    """The preview this person was shown for the input of this digest, while it is kept."""
    return cache.get(_key(user, digest)) if digest else None


def keep(user: AbstractBaseUser, digest: str, preview: Preview) -> None:
    cache.set(_key(user, digest), preview, KEPT_SECONDS)


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
