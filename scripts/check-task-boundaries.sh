#!/usr/bin/env bash
# Fails when a task group's child result type is a tuple (`withTaskGroup(of: (A, B).self)`,
# `withThrowingTaskGroup(of: (…)…`, `withDiscardingTaskGroup` has no result). Swift 6.3.1 at -O
# sometimes hands the parent a corrupted tuple (issue 11, ../shared/repro/taskgroup-tuple-result.swift):
# children return named Sendable structs instead (docs/architecture.md, "Values across task boundaries").
set -euo pipefail
cd "$(dirname "$0")/.."
if grep -rnE 'TaskGroup\(\s*of:\s*\(' Sources Tests Benchmarks; then
  echo "task-group child results must be named Sendable structs, not tuples (docs/architecture.md)" >&2
  exit 1
fi
# A closure handed to fanOut runs in a child task: its result must not be a tuple either.
python3 - <<'PY'
import pathlib, re, sys
bad = []
for path in list(pathlib.Path("Sources").rglob("*.swift")) + list(pathlib.Path("Tests").rglob("*.swift")):
    text = path.read_text()
    for m in re.finditer(r"\b(fanOut)\(", text):
        # The closure's signature, if written, comes before its `in`: look a few lines ahead.
        head = text[m.end():m.end() + 300].split(" in\n", 1)[0]
        if re.search(r"->\s*\(", head):
            bad.append(f"{path}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(1)} closure returns a tuple")
if bad:
    print("\n".join(bad))
    print("fanOut closures must return a named Sendable type, not a tuple (docs/architecture.md)", file=sys.stderr)
    sys.exit(1)
PY
echo "task boundaries: no tuple child results"
