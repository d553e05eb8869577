"""The evaluation's quality gate: which metric it checked against which threshold, and what it could not check.

The pairs are `GATED_METRICS` (report metric -> run-config minimum), the same the cloud pipeline's QualityGate
step holds against the environment's thresholds. A minimum of 0 is no threshold (every value passes it), so a
run whose thresholds are all 0 reports "nothing gated" instead of a silent pass. `judge_coverage` is checked
only where a judge is configured; with `judge=none` it is "not judged", never a failure. A metric with a
threshold that the report lacks fails: a missing number never passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from processing.config import RunConfig
from processing.metrics.judge import JUDGE_COVERAGE, NOT_JUDGED
from processing.pipelines.parameters import GATED_METRICS

PASSED, FAILED, NOTHING_GATED = "passed", "failed", "nothing gated"


@dataclass(frozen=True)
class Check:
    metric: str
    threshold_field: str
    minimum: float
    value: float | None
    passed: bool


@dataclass(frozen=True)
class GateReport:
    checked: tuple[Check, ...]
    not_checked: dict[str, str] = field(default_factory=dict)  # metric -> why it was not checked

    @property
    def failures(self) -> list[str]:
        return [
            f"{c.metric} missing ({c.threshold_field} {c.minimum:.4f})"
            if c.value is None
            else f"{c.metric} {c.value:.4f} < {c.threshold_field} {c.minimum:.4f}"
            for c in self.checked
            if not c.passed
        ]

    @property
    def verdict(self) -> str:
        if not self.checked:
            return NOTHING_GATED
        return FAILED if self.failures else PASSED

    def record(self) -> dict[str, Any]:
        """The report's `quality_gate` object (`passed` stays for readers of the earlier schema)."""
        return {
            "verdict": self.verdict,
            "passed": not self.failures,
            "failures": self.failures,
            "checked": [asdict(c) for c in self.checked],
            "not_checked": dict(self.not_checked),
        }


def evaluate_gate(metrics: Mapping[str, float], config: RunConfig) -> GateReport:
    checked: list[Check] = []
    not_checked: dict[str, str] = {}
    for metric, threshold_field in GATED_METRICS.items():
        minimum = getattr(config, threshold_field)
        if metric == JUDGE_COVERAGE and config.judge == "none":
            not_checked[metric] = NOT_JUDGED
        elif minimum <= 0:
            not_checked[metric] = f"no threshold ({threshold_field} is 0)"
        else:
            value = metrics.get(metric)
            checked.append(Check(metric, threshold_field, minimum, value, value is not None and value >= minimum))
    return GateReport(tuple(checked), not_checked)


def describe(gate: Mapping[str, Any]) -> list[str]:
    """The gate's `quality_gate` record as console lines: verdict and reasons, then what it could not check."""
    checks = [
        f"{c['metric']} {'missing' if c['value'] is None else format(c['value'], '.4f')} "
        f"{'>=' if c['passed'] else '<'} {c['threshold_field']} {c['minimum']:.4f}"
        for c in gate["checked"]
    ]
    head = f"quality gate: {gate['verdict']}"
    if gate["verdict"] == NOTHING_GATED:
        head += " (no metric has a threshold above 0, so no number could fail this run)"
    lines = [head, *(f"  checked: {c}" for c in checks)]
    return lines + [f"  not checked: {metric}: {why}" for metric, why in gate["not_checked"].items()]
