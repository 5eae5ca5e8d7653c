"""Whole-store answers computed again after each harvest, in the background.

The agenda's first page, its towns and the sitemap are computed from every event: seconds at
100,000 events. They are kept until the data changes (`http_cache.VersionedCache`); this thread
watches the store's write generation (and the date, which moves "from today") and, once the data
has settled (a harvest writes one graph per source), computes them again, so that no visitor or
crawler waits for them. Only for the embedded store, whose writes all happen in this process.
"""

from __future__ import annotations

import logging
import threading

from .agenda import AgendaFilters, today
from .http_cache import listing_modified, sole_writer
from .i18n import LANGUAGES

log = logging.getLogger(__name__)


class Warmer:
    def __init__(self, app, poll_s: float = 1.0, settle_s: float = 2.0) -> None:
        self.app = app
        self.poll_s, self.settle_s = poll_s, settle_s
        self.rounds = 0  # how many times the answers were computed (tests, logs)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="affiche-warmer", daemon=True)

    def start(self) -> "Warmer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _state(self) -> tuple:
        return (self.app.state.store.generation, today())

    def _run(self) -> None:
        done = None
        while not self._stop.is_set():
            state = self._state()
            if state != done:
                if self._stop.wait(self.settle_s):
                    return
                if self._state() != state:
                    continue  # still being written: wait for the harvest to finish
                try:
                    warm(self.app)
                except Exception:  # a store outage: pages compute it when asked, as before
                    log.exception("could not compute the agenda and sitemap in the background")
                done = state
                self.rounds += 1
            self._stop.wait(self.poll_s)


def warm(app) -> None:
    """Compute what the first visitors and crawlers ask after a harvest."""
    from .routes.pages import agenda_cities, agenda_page
    from .routes.sitemap import cached_urls

    settings = app.state.settings
    listing_modified(app)
    agenda_cities(app)
    for language in LANGUAGES:
        agenda_page(app, AgendaFilters(), 1, settings.page_size, language)
    cached_urls(app)


def start_warmer(app) -> Warmer | None:
    """A warmer for the app's store when this process alone writes it, else None."""
    return Warmer(app).start() if sole_writer(app.state.store) else None
