"""Invented organisers and their feeds, for the organiser API, account and scheduler tests."""

from __future__ import annotations

import json

from harvester import identity
from harvester.sources import Source
from publisher.accounts import Accounts

BASE_URL = "http://affiche.test"


def event(identifier: str, name: str, start: str, city: str = "Liège", place: str = "Le Rideau Rouge") -> dict:
    return {
        "@type": "Event", "@id": f"https://rideau-rouge.example/agenda/{identifier}",
        "name": name, "startDate": start,
        "location": {"@type": "Place", "name": place,
                     "address": {"@type": "PostalAddress", "streetAddress": "12 rue des Tanneurs",
                                 "addressLocality": city, "postalCode": "4000",
                                 "addressCountry": "BE"}},
    }


def feed(*events: dict) -> bytes:
    return json.dumps({"@context": "https://schema.org", "@graph": list(events)},
                      ensure_ascii=False).encode("utf-8")


RIDEAU_FEED = feed(
    event("marionnettes", "Les marionnettes de la Meuse", "2027-03-12T20:00"),
    event("quatuor", "Quatuor à cordes : Ysaÿe", "2027-03-19T19:30"),
)
AURORES_FEED = feed(event("ouverture", "Nuit d'ouverture des Aurores", "2027-07-01T21:00",
                          city="Trois-Rivières", place="Parc portuaire"))


def event_iris(source_id: str, base_url: str = BASE_URL) -> dict[str, str]:
    """The IRIs Affiche mints for the Rideau Rouge feed's events, by their identifier."""
    from harvester.pipeline import check_bytes
    from harvester.fetch import Fetched

    checked = check_bytes(Fetched(content=RIDEAU_FEED, location="feed.jsonld"),
                          Source(id=source_id, name=source_id, path=None), base_url, "jsonld")
    return {e.name: e.iri for e in checked.report.events}


def key_of(iri: str) -> str:
    return iri.rsplit("/", 1)[-1]


def graph_of(source_id: str) -> str:
    return identity.graph_iri(BASE_URL, source_id)


def two_organisers(data_dir) -> dict[str, str]:
    """The Rideau Rouge and the Aurores as organisers; a token for each and one for the operator."""
    accounts = Accounts(data_dir)
    accounts.add_organiser("rideau-rouge", "Théâtre du Rideau Rouge (Liège)")
    accounts.add_organiser("aurores", "Festival des Aurores (Trois-Rivières)")
    return {"operator": accounts.issue_token().token,
            "rideau": accounts.issue_token("rideau-rouge").token,
            "aurores": accounts.issue_token("aurores").token}


def auth(tokens: dict[str, str], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}"}
