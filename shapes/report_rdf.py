"""A saved harvest report as a SHACL validation report in RDF (sh:ValidationReport).

The organiser's page serves the same data as HTML, JSON and, through this graph, JSON-LD or Turtle:
one sh:ValidationResult per problem, with the focus event, the path and severity read from the
shape, the bilingual messages and the offending value.
"""

from __future__ import annotations

from rdflib import RDF, BNode, Graph, Literal, URIRef

from ontology import SH, XSD

from . import shapes_graph

_SEVERITIES = {"violation": SH.Violation, "warning": SH.Warning, "info": SH.Info}


def report_graph(report: dict, report_iri: str) -> Graph:
    """The report of `harvester.pipeline.Report.to_json()` (as saved) as RDF."""
    graph = Graph()
    graph.bind("sh", SH)
    node = URIRef(report_iri)
    graph.add((node, RDF.type, SH.ValidationReport))
    events = report.get("events", [])
    conforms = not any(p["severity"] == "violation" for e in events for p in e["problems"])
    graph.add((node, SH.conforms, Literal(conforms)))
    shapes = shapes_graph()
    for event in events:
        for problem in event["problems"]:
            result = BNode()
            graph.add((node, SH.result, result))
            graph.add((result, RDF.type, SH.ValidationResult))
            graph.add((result, SH.focusNode, URIRef(event["iri"])))
            graph.add((result, SH.resultSeverity, _SEVERITIES.get(problem["severity"], SH.Violation)))
            for language, message in sorted(problem["messages"].items()):
                graph.add((result, SH.resultMessage, Literal(message, lang=language)))
            shape = problem.get("shape")
            if shape:
                graph.add((result, SH.sourceShape, URIRef(shape)))
                path = shapes.value(URIRef(shape), SH.path)
                if path is not None:
                    graph.add((result, SH.resultPath, path))
            if problem.get("value") is not None:
                value = problem["value"]
                term = URIRef(value) if value.startswith(("http://", "https://")) else Literal(value)
                graph.add((result, SH.value, term))
    if report.get("started_at"):
        graph.add((node, URIRef("http://www.w3.org/ns/prov#generatedAtTime"),
                   Literal(report["started_at"], datatype=XSD.dateTime)))
    return graph
