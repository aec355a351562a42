#!/usr/bin/env python3
"""Checks deploy/prometheus/alerts.yaml against the gateway and its own tests (scripts/check-alerts.sh
runs it after promtool):

- every metric a rule reads is one the gateway exports, and every label it matches or groups by
  is one that metric carries (both read from the Swift sources, where each series is made), or
  one Prometheus adds (job, instance) or a histogram has (le);
- no other name in an expression: a typo'd metric would otherwise be an alert that never fires;
- each alert has `for:`, a severity and a summary and description, and the annotations name the
  upstream (or route, or replica) that the alert is about;
- alerts.test.yaml has, for every alert, a case where it fires and one where it stays quiet after
  its `for:` has passed; and breaking any rule (never firing, always firing) fails promtool's
  tests, so no rule goes untested;
- docs/operations.md lists every alert under "### Alert rules".
"""

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yaml"

# Targets that are not the gateway's own: the simulator, the test support.
NOT_GATEWAY = {"VeeamSimulator", "veeam-sim", "GatewayTestSupport"}
PROMQL_WORDS = {
    # aggregations and functions the rules may use
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
    "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "resets", "changes",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "last_over_time",
    "quantile_over_time", "present_over_time", "histogram_quantile", "abs", "ceil", "floor", "round", "clamp",
    "clamp_min", "clamp_max", "vector", "scalar", "absent", "absent_over_time", "time", "timestamp", "label_replace",
    # keywords
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
}
ADDED_BY_PROMETHEUS = {"job", "instance"}
NAMED_IN_ANNOTATIONS = ("upstream", "route", "instance")

from checklist import check, run  # noqa: E402  (scripts/checklist.py, beside this file)


def exported_metrics():
    """{name: labels} of every series the gateway makes, and the names that are histograms."""
    metrics, histograms = {}, set()
    for path in sorted((ROOT / "Sources").rglob("*.swift")):
        if NOT_GATEWAY & set(path.relative_to(ROOT / "Sources").parts):
            continue
        for line in path.read_text().splitlines():
            if line.strip().startswith("//"):
                continue
            for name in re.findall(r'"(veeam_gateway_[a-z0-9_]+)"', line):
                labels = set()
                dimensions = re.search(r"dimensions:\s*\[(.*?)\]", line)
                if dimensions:
                    labels = set(re.findall(r'\(\s*"([a-z_]+)"\s*,', dimensions.group(1)))
                metrics.setdefault(name, set()).update(labels)
            for name in re.findall(r'Timer\(\s*label:\s*"(veeam_gateway_[a-z0-9_]+)"', line):
                histograms.add(name)
    return metrics, histograms


def duration(text):
    """Prometheus duration (1h30m, 5m, 90s) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", str(text))
    if not parts or "".join(a + b for a, b in parts) != str(text):
        raise ValueError(f"not a duration: {text}")
    return sum(int(a) * units[b] for a, b in parts)


def analyse(expr, metrics, histograms, records):
    """The metrics, recording rules and grouping labels an expression uses; problems found."""
    problems, used_metrics, used_records, groupings = [], set(), set(), set()

    def base(name):
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in histograms:
                return name[: -len(suffix)]
        return name

    # Label matchers of each selector.
    for name, matchers in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}", expr):
        labels = set(re.findall(r'([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*"', matchers))
        metric = base(name)
        allowed = metrics.get(metric, set()) | ADDED_BY_PROMETHEUS | ({"le"} if name.endswith("_bucket") else set())
        if metric in records:
            allowed = records[metric] | ADDED_BY_PROMETHEUS
        for label in labels - allowed:
            problems.append(f"{name} has no label {label}")
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    stripped = re.sub(r"\{[^}]*\}", "", stripped)
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)
    for labels in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", stripped):
        groupings |= {label.strip() for label in labels.split(",") if label.strip()}
    stripped = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped)
    stripped = re.sub(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])", " ", stripped)
    for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped):
        if word in PROMQL_WORDS:
            continue
        if word in records:
            used_records.add(word)
        elif base(word) in metrics:
            used_metrics.add(base(word))
            if word != base(word) and word.endswith("_bucket"):
                groupings.discard("le")
        else:
            problems.append(f"{word} is neither a metric the gateway exports nor a recording rule of this file")
    known = set(ADDED_BY_PROMETHEUS) | {"le"}
    for metric in used_metrics:
        known |= metrics[metric]
    for record in used_records:
        known |= records[record]
    for label in groupings - known:
        problems.append(f"grouping by {label}, which none of its metrics has")
    return used_metrics, used_records, groupings, problems


def mutated_suite_fails(rules_doc, index, expr, work):
    """Whether promtool's tests fail with rule `index` given `expr` instead of its own."""
    doc = yaml.safe_load(yaml.safe_dump(rules_doc))
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    rules[index]["expr"] = expr
    (work / "alerts.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    result = subprocess.run(["promtool", "test", "rules", str(work / "alerts.test.yaml")], capture_output=True, text=True)
    return result.returncode != 0


def main():
    metrics, histograms = exported_metrics()
    check(len(metrics) >= 20, f"read {len(metrics)} metric names from Sources/ ({len(histograms)} histograms)")
    rules_doc = yaml.safe_load(RULES.read_text())
    rules = [rule for group in rules_doc["groups"] for rule in group["rules"]]
    records = {}
    for rule in rules:
        if "record" in rule:
            _, _, groupings, _ = analyse(rule["expr"], metrics, histograms, records)
            records[rule["record"]] = groupings - {"le"}
    alerts = [rule for rule in rules if "alert" in rule]
    check(len(alerts) >= 7, f"{len(alerts)} alerts and {len(records)} recording rules in alerts.yaml")

    # ---- names and labels
    for rule in rules:
        name = rule.get("alert") or rule.get("record")
        used, used_records, groupings, problems = analyse(rule["expr"], metrics, histograms, records)
        check(not problems and (used or used_records), f"{name}: reads {', '.join(sorted(used | used_records))}", "; ".join(problems))
        if "alert" not in rule:
            continue
        check("for" in rule and rule.get("labels", {}).get("severity") in ("critical", "warning", "info"),
              f"{name}: has for: ({rule.get('for')}) and severity ({rule.get('labels', {}).get('severity')})")
        annotations = rule.get("annotations", {})
        check(annotations.get("summary") and annotations.get("description"), f"{name}: has a summary and a description")
        carried = set(groupings)
        for record in used_records:
            carried |= records[record]
        for label in NAMED_IN_ANNOTATIONS:
            if label in carried:
                check(all(f"$labels.{label}" in annotations.get(key, "") for key in ("summary", "description")),
                      f"{name}: its summary and description name the {label}")

    # ---- the tests: every alert fires in one case and stays quiet in another
    tests = yaml.safe_load(TESTS.read_text())
    cases = [(case, test["name"]) for test in tests["tests"] for case in test.get("alert_rule_test", [])]
    for rule in alerts:
        name, wait = rule["alert"], duration(rule.get("for", "0s"))
        firing = [t for case, t in cases if case["alertname"] == name and case.get("exp_alerts")]
        quiet = [t for case, t in cases if case["alertname"] == name and not case.get("exp_alerts") and duration(case["eval_time"]) >= wait]
        check(firing, f"{name}: a test where it fires", "none")
        check(quiet, f"{name}: a test where it stays quiet after its for: ({rule.get('for')})", "none")

    # ---- and the tests catch a broken rule
    with tempfile.TemporaryDirectory(prefix="check-alerts-") as work:
        work = Path(work)
        shutil.copy(TESTS, work / "alerts.test.yaml")
        for index, rule in enumerate(rules):
            name = rule.get("alert") or rule.get("record")
            check(mutated_suite_fails(rules_doc, index, "vector(0) > 1", work), f"{name}: the tests fail when it never fires")
            if "alert" in rule:
                check(mutated_suite_fails(rules_doc, index, "vector(1)", work), f"{name}: the tests fail when it always fires")
        (work / "alerts.yaml").write_text(RULES.read_text())
        unchanged = subprocess.run(["promtool", "test", "rules", str(work / "alerts.test.yaml")], capture_output=True, text=True)
        check(unchanged.returncode == 0, "the same harness passes with the rules as they are (the failures above are the mutations')",
              unchanged.stdout[-2000:])

    # ---- the docs
    docs = (ROOT / "docs" / "operations.md").read_text()
    section = re.search(r"^### Alert rules\n(.*?)(?=^## |^### |\Z)", docs, re.S | re.M)
    check(section is not None, 'docs/operations.md has "### Alert rules"')
    for rule in alerts:
        check(section is not None and rule["alert"] in section.group(1), f"{rule['alert']}: described in docs/operations.md")


if __name__ == "__main__":
    run(main, "check-alerts")
