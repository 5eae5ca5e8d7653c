"""French and English for pages and reports: the visitor's language, and the words of the site."""

from __future__ import annotations

from fastapi import Request

LANGUAGES = ("fr", "en")

WORDS = {
    "agenda": {"fr": "Agenda", "en": "Events"},
    "upcoming": {"fr": "Prochains événements", "en": "Upcoming events"},
    "no_events": {"fr": "Aucun événement à venir.", "en": "No upcoming events."},
    "when": {"fr": "Quand", "en": "When"},
    "where": {"fr": "Où", "en": "Where"},
    "organizer": {"fr": "Organisateur", "en": "Organiser"},
    "performers": {"fr": "Interprètes", "en": "Performers"},
    "prices": {"fr": "Tarifs", "en": "Prices"},
    "free": {"fr": "Gratuit", "en": "Free"},
    "tickets": {"fr": "Billetterie", "en": "Tickets"},
    "more_info": {"fr": "Site de l'organisateur", "en": "Organiser's page"},
    "map": {"fr": "Voir sur la carte (OpenStreetMap)", "en": "View on the map (OpenStreetMap)"},
    "discipline": {"fr": "Discipline", "en": "Discipline"},
    "source": {"fr": "Source", "en": "Source"},
    "sources": {"fr": "Sources", "en": "Sources"},
    "events_here": {"fr": "Événements", "en": "Events"},
    "data": {"fr": "Données", "en": "Data"},
    "dumps": {"fr": "Téléchargements", "en": "Downloads"},
    "sparql": {"fr": "Point d'accès SPARQL", "en": "SPARQL endpoint"},
    "statistics": {"fr": "Statistiques", "en": "Statistics"},
    "this_page_as": {"fr": "Cette page en", "en": "This page as"},
    "language_switch": {"fr": "English", "en": "Français"},
    "cancelled": {"fr": "Annulé", "en": "Cancelled"},
    "postponed": {"fr": "Reporté", "en": "Postponed"},
    "rescheduled": {"fr": "Reprogrammé", "en": "Rescheduled"},
    "moved_online": {"fr": "Déplacé en ligne", "en": "Moved online"},
    "previous": {"fr": "Précédents", "en": "Previous"},
    "next": {"fr": "Suivants", "en": "Next"},
    "last_harvest": {"fr": "Dernière moisson", "en": "Last harvest"},
    "found": {"fr": "trouvés", "en": "found"},
    "published": {"fr": "publiés", "en": "published"},
    "quarantined": {"fr": "en quarantaine", "en": "quarantined"},
    "warnings": {"fr": "avertissements", "en": "warnings"},
    "problems": {"fr": "Problèmes", "en": "Problems"},
    "violation": {"fr": "Bloquant", "en": "Violation"},
    "warning": {"fr": "Avertissement", "en": "Warning"},
    "info": {"fr": "Suggestion", "en": "Info"},
    "feed_error": {"fr": "Le flux n'a pas pu être lu", "en": "The feed could not be read"},
    "not_harvested": {"fr": "Pas encore moissonnée.", "en": "Not harvested yet."},
    "skip": {"fr": "Aller au contenu", "en": "Skip to content"},
    "license": {"fr": "Licence", "en": "Licence"},
    "home": {"fr": "Accueil", "en": "Home"},
    "back_home": {"fr": "Retour à l'agenda", "en": "Back to the events"},
    "accessibility": {"fr": "Accessibilité", "en": "Accessibility"},
    "attendance": {"fr": "Participation", "en": "Attendance"},
    "attendance_offline": {"fr": "Sur place", "en": "In person"},
    "attendance_online": {"fr": "En ligne", "en": "Online"},
    "attendance_mixed": {"fr": "Sur place et en ligne", "en": "In person and online"},
    "local_time": {"fr": "heure locale", "en": "local time"},
    "organizer_site": {"fr": "site", "en": "website"},
    "filters": {"fr": "Filtrer l'agenda", "en": "Filter the events"},
    "from": {"fr": "Du", "en": "From"},
    "to": {"fr": "Au", "en": "To"},
    "city": {"fr": "Ville", "en": "Town"},
    "any_city": {"fr": "Toutes les villes", "en": "Every town"},
    "any_discipline": {"fr": "Toutes les disciplines", "en": "Every discipline"},
    "search_words": {"fr": "Mots", "en": "Words"},
    "free_only": {"fr": "Gratuit seulement", "en": "Free events only"},
    "apply": {"fr": "Afficher", "en": "Show"},
    "reset": {"fr": "Tout afficher", "en": "Show all"},
    "results": {"fr": "événements", "en": "events"},
    "page_of": {"fr": "Page {page} sur {pages}", "en": "Page {page} of {pages}"},
    "pagination": {"fr": "Pages", "en": "Pages"},
    "subscribe": {"fr": "S'abonner (iCalendar)", "en": "Subscribe (iCalendar)"},
    "no_match": {"fr": "Aucun événement ne correspond.", "en": "No event matches."},
    "vocabulary": {"fr": "Vocabulaire", "en": "Vocabulary"},
    "shapes": {"fr": "Règles de validation (SHACL)", "en": "Validation rules (SHACL)"},
    "dataset": {"fr": "Jeu de données", "en": "Dataset"},
    "events_count": {"fr": "Événements", "en": "Events"},
    "triples": {"fr": "Triplets", "en": "Triples"},
    "distributions": {"fr": "Distributions", "en": "Distributions"},
    "main_nav": {"fr": "Navigation principale", "en": "Main navigation"},
    "footer_nav": {"fr": "Données ouvertes", "en": "Open data"},
}


def page_language(request: Request, default: str = "fr") -> str:
    """`?lang=` first, then the best of Accept-Language among fr/en, then the default."""
    requested = request.query_params.get("lang", "").lower()
    if requested in LANGUAGES:
        return requested
    best, best_q = None, 0.0
    for part in (request.headers.get("accept-language") or "").split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best or default


def translator(language: str):
    def t(word: str) -> str:
        entry = WORDS.get(word)
        return entry.get(language, entry["en"]) if entry else word
    return t
