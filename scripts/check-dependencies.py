#!/usr/bin/env python3
"""Fails when a target imports a module it does not declare, or declares one it never imports
(issue 12: a dependency graph that tells the truth). Reads `swift package dump-package`."""
import glob, json, re, subprocess, sys

package = json.loads(subprocess.run(["swift", "package", "dump-package"], capture_output=True, text=True, check=True).stdout)
system = {"Foundation", "Glibc", "Darwin", "Synchronization", "Dispatch", "FoundationEssentials", "_Concurrency", "Testing", "XCTest"}
import_line = re.compile(r"^\s*(?:@\w+\s+)?(?:public |internal |package |@preconcurrency )*import (?:struct |class |enum |func )?(\w+)", re.M)
problems = []
for target in package["targets"]:
    path = target.get("path") or (("Tests/" if target["type"] == "test" else "Sources/") + target["name"])
    imports = set()
    for file in glob.glob(f"{path}/**/*.swift", recursive=True):
        imports |= set(import_line.findall(open(file).read()))
    imports -= system
    declared = {next(iter(d.values()))[0] for d in target["dependencies"]}
    if imports - declared or (declared - imports and target["type"] != "system-target"):
        problems.append(f"{target['name']}: imported, not declared {sorted(imports - declared)}; declared, not imported {sorted(declared - imports)}")
for problem in problems:
    print(problem, file=sys.stderr)
sys.exit(1 if problems else 0)
