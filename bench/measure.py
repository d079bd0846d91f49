"""Runs a command and measures it from outside, for the fleet benchmark.

    measure.py OUTFILE CMD...

Prints one line: wall_s= cpu_s= (user+sys from the kernel's rusage, in
microseconds, unlike GNU time's hundredths) rss_kib= (peak) fds= (most
descriptors the command's process tree had open, sampled every 20 ms)
csw= (voluntary+involuntary context switches). The command's output goes
to OUTFILE; the exit status is the command's.
"""
import os
import resource
import subprocess
import sys
import time


def tree(pid):
    """pid and its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, task)) as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def open_fds(pids):
    n = 0
    for p in pids:
        try:
            n += len(os.listdir("/proc/%d/fd" % p))
        except OSError:
            pass
    return n


def main(outfile, cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with open(outfile, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, open_fds(tree(proc.pid)))
            time.sleep(0.02)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    csw = (after.ru_nvcsw - before.ru_nvcsw) + (after.ru_nivcsw - before.ru_nivcsw)
    print("wall_s=%.3f cpu_s=%.6f rss_kib=%d fds=%d csw=%d"
          % (wall, cpu, after.ru_maxrss, peak, csw))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
