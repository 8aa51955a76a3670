#!/usr/bin/env python3
"""oxide86 beside QEMU's TCG: the measuring half of benches/compare-qemu.sh.

Run it through benches/compare-qemu.sh, which checks the tools and builds
the release binary first. It

* assembles the bare-metal workloads of benches/guests/ (Multiboot v1 ELF
  kernels, and the same code as 32-bit Linux processes for the native
  column), runs each under oxide86 --engine interp, jit and tiered, under
  qemu-system-i386 (TCG) and natively, and prints wall time, guest MIPS and
  the ratios as Markdown tables;
* with --linux, boots Debian's i386 kernel and the Linux test's initramfs
  to the shell prompt under oxide86 and QEMU with the same kernel, initrd
  and command line, types `poweroff -f`, and prints the times to the prompt
  and to the power-off.

Wall times are those of the whole emulator process, start-up and
translation included, the best of --runs runs (the runs of all engines are
interleaved, so a burst of load on a shared machine hits them alike). The
`null` workload powers off at once: its time is each emulator's start-up
and shutdown, subtracted in the second table.

Guest instruction counts come from the loop structure (each workload's
`; insns:` line) and are checked against oxide86's `--stats` "instructions
retired" under every engine; where a workload has a data-dependent branch
the line gives a range and the table uses oxide86's exact count (QEMU runs
the same deterministic code, so it retires the same instructions).
"""

import argparse
import datetime
import os
import platform
import pty
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

# A Pentium II-class family-6 CPU, the class oxide86's `p6` model is
# (CPUID family 6 model 5 in QEMU: MMX, FXSR, CMOV, PAE, SEP, no SSE).
QEMU_CPU = "pentium2"
QEMU_COMMON = [
    "-accel", "tcg", "-cpu", QEMU_CPU, "-m", "128", "-display", "none",
    "-nodefaults", "-no-reboot",
]
QEMU_EXIT_DEVICE = ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
ENGINES = ["interp", "jit", "tiered"]
# Workloads whose speed is that of the load/store or string path, reported
# beside the integer ones (ALU, branches, calls) rather than among them.
MEMORY_BOUND = {"copy-loop", "rep-movsd", "string-ops"}
ORDER = ["null", "alu-branch", "integer-mix", "branches", "calls",
         "copy-loop", "rep-movsd", "string-ops"]
PROMPT = b"oxide86-guest# "


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


class Workload:
    def __init__(self, path, scale):
        self.name = path.stem
        self.path = path
        text = path.read_text()
        m = re.search(r"^%define ITER (\d+)", text, re.M)
        self.iter = max(1, round(int(m.group(1)) * scale)) if m else None
        m = re.search(r"^; insns: (.+)$", text, re.M)
        if not m:
            raise SystemExit(f"{path}: no '; insns:' line")
        lo, _, hi = m.group(1).partition("..")
        self.insns_lo = self.evaluate(lo)
        self.insns_hi = self.evaluate(hi) if hi else self.insns_lo
        m = re.search(r"^; bytes: (.+)$", text, re.M)
        self.bytes = self.evaluate(m.group(1)) if m else None
        self.elf = None
        self.native = None

    def mips_meaningful(self):
        """False for the null guest and for REP workloads, where a few
        instructions move megabytes (their measure is the data rate)."""
        if self.name == "null":
            return False
        return not (self.bytes and self.insns_lo * 100 < self.bytes)

    def evaluate(self, expr):
        expr = expr.replace("ITER", str(self.iter or 0))
        if not re.fullmatch(r"[0-9+*() ]+", expr.strip()):
            raise SystemExit(f"{self.path}: cannot evaluate {expr!r}")
        return eval(expr)  # digits, +, * and parentheses only

    def build(self, guests, out):
        defs = [f"-DITER={self.iter}"] if self.iter else []
        inc = f"-I{guests}/"
        obj = out / f"{self.name}.o"
        self.elf = out / f"{self.name}.elf"
        sh(["nasm", "-f", "elf32", inc, *defs, "-o", str(obj), str(self.path)])
        sh(["ld", "-m", "elf_i386", "-T", str(guests / "link.ld"), "-o", str(self.elf), str(obj)])
        nobj = out / f"{self.name}.native.o"
        self.native = out / f"{self.name}.native"
        sh(["nasm", "-f", "elf32", inc, "-DNATIVE", *defs, "-o", str(nobj), str(self.path)])
        sh(["ld", "-m", "elf_i386", "-o", str(self.native), str(nobj)])


def timed(cmd, expect_rc, what):
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if p.returncode != expect_rc:
        raise SystemExit(
            f"{what}: exit status {p.returncode}, expected {expect_rc}\n"
            f"command: {' '.join(map(str, cmd))}\nstderr:\n{p.stderr[-3000:]}")
    return wall, p.stderr


def oxide_stats(stderr):
    s = {}
    m = re.search(r"instructions retired\s+(\d+)", stderr)
    s["insns"] = int(m.group(1)) if m else None
    m = re.search(r"(\d+) translations \(\d+ regions[^)]*\) in ([0-9.]+) s", stderr)
    if m:
        s["blocks"] = int(m.group(1))
        s["xlate"] = float(m.group(2))
    return s


def bare_metal(args, root, oxide):
    guests = root / "benches" / "guests"
    out = root / "target" / "bench-guests"
    out.mkdir(parents=True, exist_ok=True)
    names = [n for n in ORDER if (guests / f"{n}.asm").exists()]
    names += sorted(p.stem for p in guests.glob("*.asm") if p.stem not in names)
    if args.only:
        wanted = set(args.only.split(","))
        names = [n for n in names if n in wanted or n == "null"]
    workloads = [Workload(guests / f"{n}.asm", args.scale) for n in names]
    for w in workloads:
        w.build(guests, out)
    engines = [e for e in ENGINES if e in args.engines.split(",")]
    columns = engines + ["qemu"] + ([] if args.no_native else ["native"])

    best = {w.name: {} for w in workloads}
    stats = {w.name: {} for w in workloads}
    for w in workloads:
        for run in range(args.runs):
            for col in columns:
                if col == "qemu":
                    cmd = ["qemu-system-i386", *QEMU_COMMON, "-serial", "none",
                           *QEMU_EXIT_DEVICE, "-kernel", str(w.elf)]
                    wall, _ = timed(cmd, 1, f"{w.name} under QEMU")
                elif col == "native":
                    wall, _ = timed([str(w.native)], 0, f"{w.name} natively")
                else:
                    cmd = [str(oxide), "run", "--kernel", str(w.elf), "--engine", col,
                           "--serial", "none", "--stats"]
                    wall, err = timed(cmd, 1, f"{w.name} under oxide86 --engine {col}")
                    s = oxide_stats(err)
                    if s["insns"] is None:
                        raise SystemExit(f"{w.name} ({col}): no instruction count in:\n{err}")
                    prev = stats[w.name].get(col)
                    if prev and prev["insns"] != s["insns"]:
                        raise SystemExit(f"{w.name} ({col}): {s['insns']} instructions, "
                                         f"{prev['insns']} in an earlier run")
                    if prev is None or wall < best[w.name].get(col, 1e9):
                        stats[w.name][col] = s
                if wall < best[w.name].get(col, 1e9):
                    best[w.name][col] = wall
                log(f"  {w.name:<12} {col:<7} run {run + 1}/{args.runs}: {wall:8.3f} s")

    # Instruction counts: the formula, checked against every engine.
    insns = {}
    for w in workloads:
        counts = {c: stats[w.name][c]["insns"] for c in engines}
        if len(set(counts.values())) > 1:
            raise SystemExit(f"{w.name}: engines retire different counts: {counts}")
        frame = 12
        lo, hi = w.insns_lo + frame, w.insns_hi + frame
        got = next(iter(counts.values()), None)
        if got is not None and not lo <= got <= hi:
            raise SystemExit(f"{w.name}: oxide86 retired {got} instructions; "
                             f"the loop structure says {lo}..{hi}")
        insns[w.name] = got if got is not None else lo
        w.exact = lo == hi

    return workloads, columns, best, stats, insns


def fmt_s(x):
    return f"{x:.3f}" if x is not None else "-"


def fmt_mips(n, t):
    if t is None or t <= 0:
        return "-"
    v = n / t / 1e6
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def ratio(a, b):
    if a is None or b is None or b <= 0 or a <= 0:
        return "-"
    return f"{a / b:.2f}x"


def print_bare_tables(args, workloads, columns, best, stats, insns):
    null = best.get("null", {})
    engines = [c for c in columns if c in ENGINES]
    head = {"interp": "interp", "jit": "jit", "tiered": "tiered", "qemu": "QEMU",
            "native": "native"}
    print(f"### Bare-metal workloads: wall time, start-up included (best of {args.runs})\n")
    cols = ["workload", "kind", "guest insns"]
    for c in columns:
        cols += [f"{head[c]} s", f"{head[c]} MIPS"]
    cols += [f"{e}/QEMU" for e in engines if e != "interp"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for w in workloads:
        b = best[w.name]
        n = insns[w.name]
        kind = "start-up" if w.name == "null" else (
            "memory" if w.name in MEMORY_BOUND else "integer")
        count = f"{n:,}" + ("" if w.exact else "*")
        row = [w.name, kind, count]
        for c in columns:
            row += [fmt_s(b.get(c)), "-" if not w.mips_meaningful() else fmt_mips(n, b.get(c))]
        row += [ratio(b.get("qemu"), b.get(e)) for e in engines if e != "interp"]
        print("| " + " | ".join(row) + " |")
    print("\n(* data-dependent branch: oxide86's exact count, inside the range the "
          "loop structure gives. Ratios are speed ratios, QEMU's time over "
          "oxide86's: above 1 oxide86 is faster.)\n")

    if not null:
        return
    print("### Start-up subtracted (each engine's wall time minus its null "
          "guest's), against native\n")
    cols = ["workload", "guest insns"]
    cols += [f"{head[c]} MIPS" for c in columns]
    if "interp" in engines:
        cols += [f"{e}/interp" for e in engines if e != "interp"]
    cols += [f"{e}/QEMU" for e in engines if e != "interp"]
    if "native" in columns:
        cols += [f"{head[c]} % of native" for c in columns if c != "native"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    rates = []
    for w in workloads:
        if w.name == "null":
            continue
        b = best[w.name]
        net = {c: (b[c] - null.get(c, 0.0)) if c in b else None for c in columns}
        n = insns[w.name]
        row = [w.name, f"{n:,}"]
        row += [fmt_mips(n, net[c]) if w.mips_meaningful() else "-" for c in columns]
        if "interp" in engines:
            row += [ratio(net["interp"], net[e]) for e in engines if e != "interp"]
        row += [ratio(net.get("qemu"), net[e]) for e in engines if e != "interp"]
        if "native" in columns:
            row += [("-" if not net[c] or net[c] <= 0 else
                     f"{100 * net['native'] / net[c]:.1f}%")
                    for c in columns if c != "native"]
        print("| " + " | ".join(row) + " |")
        if w.bytes:
            rates.append((w, net))
    if rates:
        print("\nData rates of the memory-bound workloads (MB/s moved, compared "
              "or scanned; start-up subtracted):\n")
        cols = ["workload", "bytes"] + [f"{head[c]} MB/s" for c in columns]
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for w, net in rates:
            row = [w.name, f"{w.bytes:,}"]
            row += ["-" if not net[c] or net[c] <= 0 else f"{w.bytes / net[c] / 1e6:,.0f}"
                    for c in columns]
            print("| " + " | ".join(row) + " |")
    print("\nTranslation (oxide86 --stats, run with the best time): "
          + "; ".join(
              f"{w.name} {e} {stats[w.name][e]['blocks']} translations in "
              f"{1000 * stats[w.name][e]['xlate']:.1f} ms"
              for w in workloads for e in engines
              if e != "interp" and "xlate" in stats[w.name].get(e, {})))
    print()


# ---------------------------------------------------------------- Linux boot

# Serial lines that split a boot into phases, timed as they arrive: the
# kernel's first line (early with `earlyprintk=ttyS0` on the command line:
# before it, the firmware and the decompressor) and the start of init.
PHASE_MARKS = [b"Linux version", b"Run /init"]


class Console:
    """A process whose serial console is its stdout, read on a thread."""

    def __init__(self, cmd, stdin_pty):
        self.start = time.perf_counter()
        self.master = None
        if stdin_pty:
            # oxide86 reads a terminal on a thread and hands bytes to the
            # UART as they come, as QEMU does with a pipe. (From a pipe it
            # would block reading whenever the guest idles, and what it
            # read before the shell's prompt could be lost to the boot.)
            self.master, slave = pty.openpty()
            stdin = slave
        else:
            stdin = subprocess.PIPE
        self.proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        if stdin_pty:
            os.close(slave)
        self.buf = bytearray()
        self.marks = {}
        self.cond = threading.Condition()
        self.err = b""
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def type(self, text):
        if self.master is not None:
            os.write(self.master, text)
        else:
            self.proc.stdin.write(text)
            self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.master is not None:
            os.close(self.master)

    def _read(self):
        while True:
            chunk = self.proc.stdout.read1(65536)
            with self.cond:
                if not chunk:
                    self.cond.notify_all()
                    return
                self.buf += chunk
                now = time.perf_counter() - self.start
                for m in PHASE_MARKS:
                    if m not in self.marks and m in self.buf:
                        self.marks[m] = now
                self.cond.notify_all()

    def _read_err(self):
        self.err = self.proc.stderr.read()

    def expect(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while pattern not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and pattern not in self.buf:
                    self.proc.kill()
                    tail = self.buf[-2000:].decode(errors="replace")
                    raise RuntimeError(f"no {pattern!r} within {timeout} s; output ends:\n{tail}")
                self.cond.wait(min(left, 0.5))
        return time.perf_counter() - self.start

    def wait(self, timeout):
        rc = self.proc.wait(timeout)
        return time.perf_counter() - self.start, rc


def linux_boot(args, root, oxide):
    log("building the Linux guest (testsuite example `initramfs`)")
    paths = sh(["cargo", "run", "--quiet", "--release", "-p", "oxide86-testsuite",
                "--example", "initramfs"], cwd=root).split()
    kernel = Path(paths[1] if args.kernel == "686-pae" else paths[0])
    initrd = Path(paths[2])
    append = args.append
    configs = []
    for e in args.linux_engines.split(","):
        clock = "virtual"
        if ":" in e:
            e, clock = e.split(":")
        configs.append((f"oxide86 {e} ({clock} clock)",
                        [str(oxide), "run", "--engine", e, "--clock", clock, "--serial", "stdio",
                         "--stats", "--kernel", str(kernel), "--initrd", str(initrd),
                         "--append", append], True))
    configs.append(("QEMU TCG", ["qemu-system-i386", *QEMU_COMMON, "-serial", "stdio",
                                 "-kernel", str(kernel), "-initrd", str(initrd),
                                 "-append", append], False))
    best = {}
    failed = {}
    # Every run's time to the prompt, by configuration and run (None: failed).
    prompts = {name: [None] * args.linux_runs for name, _, _ in configs}
    for run in range(args.linux_runs):
        for name, cmd, is_oxide in configs:
            # The same for both: `poweroff -f` is typed once the prompt is
            # there (oxide86 through a terminal, QEMU through a pipe).
            c = Console(cmd, stdin_pty=is_oxide)
            try:
                t_prompt = c.expect(PROMPT, args.linux_timeout)
                c.type(b"poweroff -f\n")
                t_off, rc = c.wait(args.linux_timeout)
                if rc != 0:
                    raise RuntimeError(f"exit status {rc}")
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                c.close()
                time.sleep(0.2)
                failed[name] = f"{e}"
                log(f"  linux {name:<28} run {run + 1}/{args.linux_runs}: FAILED: {e}\n"
                    f"{c.err.decode(errors='replace')[-2000:]}")
                continue
            c.close()
            time.sleep(0.2)
            s = oxide_stats(c.err.decode(errors="replace")) if is_oxide else {}
            log(f"  linux {name:<28} run {run + 1}/{args.linux_runs}: prompt {t_prompt:7.2f} s, "
                f"power-off {t_off:7.2f} s" + (f", {s['insns']:,} insns" if s.get("insns") else "")
                + (f", jit: {s['blocks']:,} translations in {s['xlate']:.2f} s" if "xlate" in s else ""))
            prompts[name][run] = t_prompt
            prev = best.get(name)
            if prev is None or t_prompt < prev[0]:
                best[name] = (t_prompt, t_off, s, dict(c.marks))
    print(f"### Linux boot to the shell (best of {args.linux_runs})\n")
    print(f"Kernel `{kernel.name}` ({args.kernel}), the Linux test's initramfs, "
          f"`--append \"{append}\"`, 128 MiB. Times from process start (QEMU: SeaBIOS "
          "included) to the prompt `oxide86-guest# ` on the serial console, and to the "
          "process's exit after `poweroff -f`.\n")
    q = best.get("QEMU TCG")
    print("| emulator | to prompt s | to power-off s | guest insns | MIPS | vs QEMU (prompt) |")
    print("|---|---|---|---|---|---|")
    for name, _, _ in configs:
        if name not in best:
            print(f"| {name} | failed: {failed.get(name, '?')} | | | | |")
            continue
        t_prompt, t_off, s, _ = best[name]
        n = s.get("insns")
        row = [name, f"{t_prompt:.2f}", f"{t_off:.2f}", f"{n:,}" if n else "-",
               fmt_mips(n, t_off) if n else "-", ratio(q[0], t_prompt) if q else "-"]
        print("| " + " | ".join(row) + " |")
    xl = [f"{name}: {best[name][2]['blocks']:,} translations in {best[name][2]['xlate']:.2f} s"
          for name, _, _ in configs if name in best and "xlate" in best[name][2]]
    if xl:
        print("\nTranslation: " + "; ".join(xl) + ".")
    print("\n(vs QEMU: QEMU's time to the prompt over this one's; above 1 is faster "
          "than QEMU.)\n")
    print_all_runs(configs, prompts)
    print_phases(configs, best)


def print_all_runs(configs, prompts):
    """Every run, not only the best: median, mean and best time to the
    prompt, and how often each emulator beat QEMU's run of the same round
    (the rounds interleave the emulators, so a pair shares the host's
    load)."""
    q = prompts.get("QEMU TCG", [])
    rows = []
    for name, _, _ in configs:
        ts = [t for t in prompts[name] if t is not None]
        if len(ts) < 2:
            continue
        pairs = [(t, u) for t, u in zip(prompts[name], q) if t is not None and u is not None]
        won = f"{sum(1 for t, u in pairs if t < u)} of {len(pairs)}" if name != "QEMU TCG" else "-"
        rows.append(f"| {name} | {len(ts)} | {statistics.median(ts):.3f} | "
                    f"{statistics.mean(ts):.3f} | {min(ts):.2f} | {won} |")
    if not rows:
        return
    print("All runs (time to the prompt, s):\n")
    print("| emulator | runs | median | mean | best | faster than QEMU's run of the same round |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows) + "\n")


def print_phases(configs, best):
    """The boot's phases in each emulator's best run, from its serial marks."""
    rows = []
    for name, _, _ in configs:
        if name not in best:
            continue
        t_prompt, _, _, marks = best[name]
        if not all(m in marks for m in PHASE_MARKS):
            continue
        first, init = (marks[m] for m in PHASE_MARKS)
        rows.append(f"| {name} | {first:.2f} | {init - first:.2f} | {t_prompt - init:.2f} |")
    if not rows:
        return
    print("Phases of the best runs (serial lines timed as they arrive; the kernel's "
          "first line comes early only with `earlyprintk=ttyS0` in `--append`):\n")
    print("| emulator | start to `Linux version` s | to `Run /init` s | to the prompt s |")
    print("|---|---|---|---|")
    print("\n".join(rows) + "\n")


def machine_facts(root):
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    commit = sh(["git", "-C", str(root), "rev-parse", "--short", "HEAD"]).strip()
    if sh(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"]).strip():
        commit += " (with uncommitted changes)"
    qemu = sh(["qemu-system-i386", "--version"]).splitlines()[0]
    return (f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}\n"
            f"- commit: {commit}\n"
            f"- host: {os.cpu_count()} CPUs, {cpu}, {platform.system()} {platform.release()}\n"
            f"- {qemu}; `-cpu {QEMU_CPU}`\n"
            f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--runs", type=int, default=3, help="runs of each bare-metal workload (best kept)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every workload's iterations")
    p.add_argument("--only", help="comma-separated workloads (null always runs)")
    p.add_argument("--engines", default="interp,jit,tiered")
    p.add_argument("--no-native", action="store_true")
    p.add_argument("--no-bare-metal", action="store_true")
    p.add_argument("--linux", action="store_true", help="also the Linux boot comparison")
    p.add_argument("--linux-runs", type=int, default=3)
    p.add_argument("--linux-engines", default="tiered,tiered:realtime,jit,interp",
                   help="oxide86 engines for the boot, ENGINE or ENGINE:CLOCK (virtual|realtime)")
    p.add_argument("--kernel", default="686-pae", choices=["686", "686-pae"])
    p.add_argument("--append", default="console=ttyS0 cryptomgr.notests")
    p.add_argument("--linux-timeout", type=float, default=1200)
    args = p.parse_args()
    root = args.root.resolve()
    oxide = root / "target" / "release" / "oxide86"
    print("## oxide86 beside QEMU TCG\n")
    print(machine_facts(root) + "\n")
    if not args.no_bare_metal:
        results = bare_metal(args, root, oxide)
        print_bare_tables(args, *results)
    if args.linux:
        linux_boot(args, root, oxide)
    print(f"- load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
