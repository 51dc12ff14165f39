"""Collect bench/results/*.json into bench/results.md."""

import json

from common import RESULTS


def main() -> None:
    lines = ["# mlpipe benchmarks", "", "Written by `make bench` (bench/report.py); each section by its script.", ""]
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        lines += [f"## {result['title']}", "", f"{result['date']} on {result['machine']} (`bench/{path.stem}`).", ""]
        lines += ["| figure | value | target | met |", "|---|---|---|---|"]
        for row in result["rows"]:
            met = {True: "yes", False: "**no**", None: ""}[row["met"]]
            lines.append(f"| {row['figure']} | {row['value']} | {row['target']} | {met} |")
        if result.get("notes"):
            lines += ["", result["notes"]]
        lines.append("")
    # What the figures cannot say themselves: each optimisation's before and after, and why a target is missed.
    lines += [RESULTS.with_name("optimisations.md").read_text()]
    RESULTS.with_name("results.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
