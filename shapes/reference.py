"""The reference path: pyshacl over the whole feed in one call.

Slower than `shapes.compiled` but a complete SHACL engine; the tests and the benchmark compare the
two so that the compiled queries cannot drift from what the shapes mean.
"""

from __future__ import annotations

import pyshacl
from rdflib import RDF, Graph

from ontology import SH

from .results import RawResult


def run(graph: Graph, shapes: Graph, ontology: Graph) -> list[RawResult]:
    data = Graph()
    data += graph
    data += ontology  # pyshacl's ont_graph does not reach sh:class checks
    _, results_graph, _ = pyshacl.validate(
        data, shacl_graph=shapes, inference="none", advanced=True, allow_warnings=True,
    )
    return [
        RawResult(
            focus=results_graph.value(result, SH.focusNode),
            path=results_graph.value(result, SH.resultPath),
            value=results_graph.value(result, SH.value),
            severity=results_graph.value(result, SH.resultSeverity) or SH.Violation,
            shape=results_graph.value(result, SH.sourceShape),
        )
        for result in results_graph.subjects(RDF.type, SH.ValidationResult)
    ]
