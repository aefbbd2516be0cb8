#!/usr/bin/env python3
"""Checks that every metric the alert rules and the Grafana dashboard query is one a real hookrelay serves.

    check_metric_names.py SCRAPE RULES.yml DASHBOARD.json

SCRAPE is the text of a `GET /metrics`. A name counts as served when a sample line or a `# TYPE` line of the
scrape has it (a family declared without series yet is served too); a histogram's `_bucket`, `_sum` and `_count`
count as served with it. Names the rules file records itself (`record:`) and `up`, which Prometheus makes for
every scrape, are not looked for. Exits 1 listing each missing name and where it is used, so renaming a metric
without updating the rules or the dashboard fails CI.

Standard library only (CI has no PyYAML): the rules file is read line by line for its `expr:` values (one-line
or `|`/`>` blocks), which is the only YAML this needs.
"""

import json
import re
import sys

# Made by Prometheus for each target, not by the target.
PROMETHEUS_SERIES = {"up"}

# PromQL words that look like names but are not metrics.
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
    "inf", "nan", "start", "end", "atan2",
}

NAME = re.compile(r"(?<![\w.$:])([a-zA-Z_:][a-zA-Z0-9_:]*)")


def served_names(scrape):
    names = set()
    for line in scrape.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                name, kind = parts[2], parts[3]
                names.add(name)
                if kind in ("histogram", "summary"):
                    names.update({name + "_sum", name + "_count"})
                if kind == "histogram":
                    names.add(name + "_bucket")
            continue
        if line.startswith("#"):
            continue
        names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def metric_names(expr):
    """The metric names a PromQL expression selects."""
    # Strings (label values, which may hold anything), then label matchers, ranges and subqueries, then the label
    # lists of `by (…)`, `on (…)` and the like.
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in NAME.finditer(expr):
        name = match.group(1)
        following = expr[match.end():].lstrip()
        if following.startswith("("):  # a function or aggregation
            continue
        if name.lower() in KEYWORDS:
            continue
        # A number's exponent (`1e6`) or a duration's unit was cut out above; grafana variables start with `$`.
        names.add(name)
    return names


def rule_exprs(text):
    """(line number, expression, recorded name or None) of each rule in a Prometheus rules file."""
    lines = text.splitlines()
    rules = []
    recorded = set()
    i = 0
    while i < len(lines):
        line = lines[i]
        record = re.match(r"\s*-?\s*record:\s*(\S+)", line)
        if record:
            recorded.add(record.group(1).strip("'\""))
        m = re.match(r"(\s*)(?:-\s*)?expr:\s*(.*)$", line)
        if not m:
            i += 1
            continue
        indent, value = len(m.group(1)), m.group(2).strip()
        start = i + 1
        if value in ("|", ">", "|-", ">-", "|+", ">+"):
            block = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                block.append(lines[i].strip())
                i += 1
            value = " ".join(block)
        else:
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            i += 1
        rules.append((start, value))
    return rules, recorded


def dashboard_exprs(dashboard):
    """(where, expression) for every panel target and templating query of a Grafana dashboard."""
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            title = node.get("title", where)
            if isinstance(node.get("expr"), str):
                found.append((f"panel {title!r}", node["expr"]))
            for key, value in node.items():
                walk(value, title if isinstance(title, str) else where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(dashboard.get("panels", []), "dashboard")
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and isinstance(query, str):
            # label_values(metric{…}, label): only the metric is a name; metrics(…) and query_result(…) hold PromQL.
            label_values = re.match(r"\s*label_values\(\s*([a-zA-Z_:][\w:]*)", query)
            expr = label_values.group(1) if label_values else re.sub(r"^\s*\w+\((.*)\)\s*$", r"\1", query)
            found.append((f"variable ${variable.get('name')}", expr))
    return found


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    scrape_path, rules_path, dashboard_path = argv[1:]
    with open(scrape_path, encoding="utf-8") as f:
        served = served_names(f.read())
    with open(rules_path, encoding="utf-8") as f:
        rules, recorded = rule_exprs(f.read())
    with open(dashboard_path, encoding="utf-8") as f:
        dashboard = json.load(f)

    uses = [(f"{rules_path}:{line}", expr) for line, expr in rules]
    uses += [(f"{dashboard_path} {where}", expr) for where, expr in dashboard_exprs(dashboard)]
    if not rules or not any(dashboard_path in where for where, _ in uses):
        print(f"FAIL: found no expressions in {rules_path} or {dashboard_path}; is the parser broken?", file=sys.stderr)
        return 1
    missing = []
    checked = set()
    for where, expr in uses:
        for name in sorted(metric_names(expr)):
            if name in recorded or name in PROMETHEUS_SERIES:
                continue
            checked.add(name)
            if name not in served:
                missing.append(f"{where}: {name}")
    if missing:
        print("FAIL: metrics used in the rules or the dashboard that the scrape does not have:", file=sys.stderr)
        for line in missing:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"ok: {len(uses)} expressions use {len(checked)} metric names, all in the scrape: {', '.join(sorted(checked))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
