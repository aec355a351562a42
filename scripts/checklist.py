"""The tally the scripts/check-*.py scripts keep: each check printed as `ok` or `FAIL`, counted,
and the summary line and exit status at the end."""
import sys
import traceback

passed = 0
failures = []


def check(condition, what, detail=""):
    """Records one check; `what` says what holds when it passes."""
    global passed
    if condition:
        passed += 1
        print(f"ok   {what}")
    else:
        failures.append(what)
        print(f"FAIL {what}" + (f": {detail}" if detail else ""))
    return bool(condition)


def finish(name):
    """Prints `name: N passed, M failed` and exits non-zero when anything failed."""
    print(f"{name}: {passed} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


def run(main, name):
    """Runs `main`, counting a crash as a failure (never a pass), then ``finish(name)``."""
    try:
        main()
    except Exception:
        traceback.print_exc()
        check(False, "the checks ran to the end")
    finish(name)
