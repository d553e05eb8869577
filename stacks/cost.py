"""`python -m stacks.cost [<env> ...] [--allow-missing]`: each environment's idle monthly bill, line by line.

The environments (all of them when none is named) are synthesized as the stack tests synthesize them (cdk.json's
context, no bundling, no cdk-nag) and priced by `stacks.pricing` from `stacks/prices.json`, so the idle bill of a
configuration can be read and reviewed before it is deployed. Exit status: 0; 1 when a resource has no price in
the table (the output names it) unless `--allow-missing`; 2 for an unknown environment or invalid configuration.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from collections.abc import Callable, Mapping

from stacks.config import ConfigError, committed_context, load_app_config
from stacks.pricing import HOURS_PER_MONTH, Estimate, Line, PriceTable, TemplateJson, estimate, load_prices

USAGE_ONLY = (
    "Not priced, because they depend on usage: S3 storage and requests, CloudWatch Logs ingestion and storage "
    "(flow logs included), per-request charges (endpoint invocations, Lambda, SQS, SNS, EventBridge, KMS API calls), "
    "data processed by interface endpoints, data transfer, pipeline executions (processing jobs), MLflow metadata "
    "storage, and the processing image in the CDK bootstrap ECR repository. No free tier is subtracted."
)
HEADER = ("resource", "what", "quantity", "unit price", "monthly")
WIDTH = 110  # prose wraps here; table rows are as wide as their cells


def synthesize(names: list[str]) -> dict[str, TemplateJson]:
    """Templates of the named environments keyed by stack path ("dev/Storage"), synthesized without Docker."""
    import aws_cdk as cdk  # imported here so that argument errors answer without starting the jsii runtime

    from stacks.app_builder import build_app

    context = {**committed_context(bundling=False), "environments": ",".join(names)}
    with tempfile.TemporaryDirectory() as outdir:
        assembly = build_app(cdk.App(context=context, outdir=outdir), with_checks=False).synth()
        return {stack.hierarchical_id: stack.template for stack in assembly.stacks_recursively}


def _usd(amount: float) -> str:
    """Cents always, and the table's own precision beyond them: $0.10, $1.515, $0.0052."""
    digits = f"{amount:.4f}".rstrip("0").split(".")[1]
    return f"${amount:,.{max(2, len(digits))}f}"


def _quantity(line: Line) -> str:
    plural = "" if line.quantity == 1 or line.unit == "GiB" else "s"
    return f"{line.quantity:g} {line.unit}{plural}"


def _row(line: Line, region: str) -> tuple[str, ...]:
    if line.price is None:
        return line.path, line.what, _quantity(line), "-", f"no price in stacks/prices.json for {line.key} in {region}"
    return (
        line.path,
        line.what,
        _quantity(line),
        f"{_usd(line.price.usd)}/{line.price.per}",
        f"${line.monthly:,.2f}",
    )


def _on_demand_row(line: Line, region: str) -> tuple[str, ...]:
    row = _row(line, region)
    return row if line.hourly is None else (*row[:4], f"{_usd(line.hourly)} an hour while up")


def render(result: Estimate, prices: PriceTable) -> str:
    """A fixed-width table, one row a billed quantity, then the total and what is billed but not priced."""
    idle = [line for line in result.lines if line.idle]
    on_demand = [line for line in result.lines if not line.idle]
    rows = [HEADER, *(_row(line, result.region) for line in idle)]
    extra = [_on_demand_row(line, result.region) for line in on_demand]
    widths = [max(len(row[i]) for row in rows + extra) for i in range(4)]

    def lay_out(row: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]

    table = [lay_out(row) for row in rows]
    if extra:
        heading = "On demand, not idle: billed per hour while a run has the endpoint up, until the clean-up hook"
        table += ["", f"{heading} deletes it", *(lay_out(row) for row in extra)]
    missing = len(result.missing)
    total = f"total ${result.total:,.2f} a month" + (f", without the {missing} unpriced line(s)" if missing else "")
    notes = [textwrap.fill(note, WIDTH, initial_indent="- ", subsequent_indent="  ") for note in result.notes]
    return "\n".join(
        [
            f"{result.env} ({result.region}): idle monthly estimate, on-demand USD, {HOURS_PER_MONTH} hours a month, "
            f"prices captured {prices.captured} (stacks/prices.json)",
            "",
            *table,
            "",
            total,
            *(["", "Billed but not priced here:", *notes] if notes else []),
        ]
    )


Synthesizer = Callable[[list[str]], Mapping[str, TemplateJson]]


def main(argv: list[str] | None = None, templates: Synthesizer = synthesize) -> int:
    """The CLI; `templates` is how the environments' templates are obtained (tests pass the session's)."""
    parser = argparse.ArgumentParser(prog="python -m stacks.cost", description=__doc__.splitlines()[0])
    parser.add_argument("environments", nargs="*", help="environments to price (default: every one in cdk.json)")
    parser.add_argument("--allow-missing", action="store_true", help="exit 0 even when a resource has no price")
    args = parser.parse_args(argv)
    try:
        config = load_app_config(committed_context())
        names = (
            [env.name for env in config.select(args.environments)] if args.environments else list(config.environments)
        )
    except ConfigError as error:
        print(f"ragops: invalid configuration: {error}", file=sys.stderr)
        return 2
    prices, found = load_prices(), templates(names)
    results = [estimate(found, name, config.environments[name].region, prices) for name in names]
    print("\n\n".join([*(render(result, prices) for result in results), textwrap.fill(USAGE_ONLY, WIDTH)]))
    missing = [message for result in results for message in result.missing]
    if missing and not args.allow_missing:
        print("\n".join(["", *missing]), file=sys.stderr)
        print(
            f"ragops: {len(missing)} resource(s) without a price: add them to stacks/prices.json with their source, "
            "or pass --allow-missing",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
