#!/usr/bin/env python3
"""Reads a `perf script -F tid,cpu,time,event,trace` dump of the scheduler and system-call
tracepoints (recorded by bench/miss-timeline.sh) and splits each one-connection request into the
wall-clock segments between its system calls, by thread. Prints medians (and p90) in µs.

Usage: miss-timeline.py DUMP MODE CLIENT_TIDS GATEWAY_LOOP_TIDS WATCHER_TIDS SIM_TIDS
  MODE: "gateway" (client → gateway → simulator → gateway → client) or "direct" (client →
  simulator → client). Tid lists are comma-separated; empty for the ones a mode does not use.

What counts as a mark (so that wake-up eventfds and zero-length polls do not): a write-like call
(write, writev, sendto, sendmsg) that moved more than 8 bytes, at its entry; a read-like call
(read, readv, recvfrom, recvmsg) that returned more than 8 bytes, at its exit; a switch of a
thread onto a CPU.
"""
import re
import statistics
import sys

WRITES = {1, 20, 44, 46}
READS = {0, 19, 45, 47}
LINE = re.compile(r"^\s*(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$")


def tids(arg):
    return {int(x) for x in arg.split(",") if x}


def marks(path):
    """(time µs, tid, kind, nr, fd, cpu) in time order; kind W (write entry), R (read exit), S (on
    CPU), O (off CPU)."""
    pending = {}
    out = []
    with open(path, errors="replace") as dump:
        for line in dump:
            m = LINE.match(line)
            if not m:
                continue
            tid, cpu, ts, event, rest = int(m.group(1)), int(m.group(2)), float(m.group(3)) * 1e6, m.group(4), m.group(5)
            if event.endswith("sys_enter"):
                nr = int(rest.split()[1])
                if nr in WRITES or nr in READS:
                    args = rest[rest.find("(") + 1:].split(",")
                    pending[tid] = (nr, int(args[0].strip(), 16), ts)
            elif event.endswith("sys_exit"):
                nr_text, _, ret_text = rest.partition("=")
                nr = int(nr_text.split()[1])
                entry = pending.pop(tid, None)
                if entry is None or entry[0] != nr:
                    continue
                ret = int(ret_text.strip())
                if ret <= 8:
                    continue
                if nr in WRITES:
                    out.append((entry[2], tid, "W", nr, entry[1], cpu))
                else:
                    out.append((ts, tid, "R", nr, entry[1], cpu))
            elif event.endswith("sched_switch"):
                prev = re.search(r"prev_pid=(\d+)", rest)
                if prev:
                    out.append((ts, int(prev.group(1)), "O", 0, -1, cpu))
                nxt = re.search(r"next_pid=(\d+)", rest)
                if nxt:
                    out.append((ts, int(nxt.group(1)), "S", 0, -1, cpu))
    out.sort()
    return out


def summarize(name, values):
    if not values:
        return f"{name:<58} -"
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
    return f"{name:<58} {statistics.median(values):8.1f} {p90:8.1f}"


def gateway(events, client, loop, watcher, sim):
    seg = {k: [] for k in ("front in: client write → loop has read the request",
                           "  of which the loop's wake (client write → loop on CPU)",
                           "pre: request read → upstream request sent",
                           "upstream: request sent → simulator writes the answer",
                           "  of which the simulator's wake (request sent → simulator on CPU)",
                           "  loop still on CPU after sending (request sent → loop off CPU)",
                           "  simulator woken on the loop's CPU (share)",
                           "back: simulator write → loop has read the answer",
                           "  of which watcher on CPU after the simulator's write",
                           "  of which loop on CPU after the simulator's write",
                           "post: answer read → response written to the client",
                           "front out: response written → client has read it",
                           "total: client write → client read",
                           "loop on another CPU than the watcher (share)",
                           "watcher woke (share of requests)")}
    keys = list(seg)
    state, t = 0, {}
    client_fd = None
    for ts, tid, kind, nr, fd, cpu in events:
        if state == 0:
            if tid in client and kind == "W":
                t = {"A": ts}
                state = 1
        elif state == 1:
            if tid in loop and kind == "S" and "B" not in t:
                t["B"] = ts
            if tid in loop and kind == "R" and nr == 0:
                t["C"] = ts
                client_fd = fd
                state = 2
        elif state == 2:
            if tid in loop and kind == "W" and nr in (44, 46):
                t["D"], t["Dcpu"] = ts, cpu
                state = 3
        elif state == 3:
            if tid in loop and kind == "O" and "Doff" not in t:
                t["Doff"] = ts
            if tid in sim and kind == "S" and "Dsim" not in t:
                t["Dsim"], t["Dsimcpu"] = ts, cpu
            if tid in sim and kind == "W":
                t["E"] = ts
                state = 4
        elif state == 4:
            if tid in watcher and kind == "S" and "F" not in t:
                t["F"], t["Fcpu"] = ts, cpu
            if tid in loop and kind == "S" and "H" not in t:
                t["H"], t["Hcpu"] = ts, cpu
            if tid in loop and kind == "R" and nr in (45, 47):
                t["I"] = ts
                state = 5
        elif state == 5:
            if tid in loop and kind == "W" and nr in (1, 20) and fd == client_fd:
                t["J"] = ts
                state = 6
        elif state == 6:
            if tid in client and kind == "R":
                t["K"] = ts
                seg[keys[0]].append(t["C"] - t["A"])
                if "B" in t:
                    seg[keys[1]].append(t["B"] - t["A"])
                seg[keys[2]].append(t["D"] - t["C"])
                seg[keys[3]].append(t["E"] - t["D"])
                if "Dsim" in t:
                    seg[keys[4]].append(t["Dsim"] - t["D"])
                    seg[keys[6]].append(100.0 if t["Dsimcpu"] == t["Dcpu"] else 0.0)
                if "Doff" in t:
                    seg[keys[5]].append(t["Doff"] - t["D"])
                seg[keys[7]].append(t["I"] - t["E"])
                if "F" in t:
                    seg[keys[8]].append(t["F"] - t["E"])
                if "H" in t:
                    seg[keys[9]].append(t["H"] - t["E"])
                seg[keys[10]].append(t["J"] - t["I"])
                seg[keys[11]].append(t["K"] - t["J"])
                seg[keys[12]].append(t["K"] - t["A"])
                seg[keys[13]].append(100.0 if "F" in t and "H" in t and t["Fcpu"] != t["Hcpu"] else 0.0)
                seg[keys[14]].append(100.0 if "F" in t else 0.0)
                state = 0
    return seg


def direct(events, client, sim):
    seg = {k: [] for k in ("client write → simulator writes the answer",
                           "  of which the simulator's wake (client write → simulator on CPU)",
                           "simulator write → client has read it",
                           "total: client write → client read")}
    keys = list(seg)
    state, t = 0, {}
    for ts, tid, kind, nr, fd, cpu in events:
        if state == 0 and tid in client and kind == "W":
            t, state = {"A": ts}, 1
        elif state == 1 and tid in sim and kind == "S" and "As" not in t:
            t["As"] = ts
        elif state == 1 and tid in sim and kind == "W":
            t["E"], state = ts, 2
        elif state == 2 and tid in client and kind == "R":
            seg[keys[0]].append(t["E"] - t["A"])
            if "As" in t:
                seg[keys[1]].append(t["As"] - t["A"])
            seg[keys[2]].append(ts - t["E"])
            seg[keys[3]].append(ts - t["A"])
            state = 0
    return seg


def main():
    path, mode = sys.argv[1], sys.argv[2]
    client, loop, watcher, sim = (tids(a) for a in sys.argv[3:7])
    events = marks(path)
    # The connection lives on one of the loops: the one that sends the upstream requests.
    senders = {}
    for _, tid, kind, nr, _, _ in events:
        if tid in loop and kind == "W" and nr in (44, 46):
            senders[tid] = senders.get(tid, 0) + 1
    if senders:
        loop = {max(senders, key=senders.get)}
    seg = gateway(events, client, loop, watcher, sim) if mode == "gateway" else direct(events, client, sim)
    count = len(next(iter(seg.values())))
    print(f"{mode}: {count} requests (median µs, p90 µs)")
    for name, values in seg.items():
        print(summarize(name, values))


if __name__ == "__main__":
    main()
