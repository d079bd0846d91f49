"""Peak heap of a massif run, and the largest allocation sites at the peak.

    massif_peak.py MASSIF_OUT
"""
import re
import subprocess
import sys


def main(path):
    snaps, cur = [], {}
    for line in open(path):
        k, _, v = line.strip().partition("=")
        if k in ("mem_heap_B", "mem_heap_extra_B"):
            cur[k] = int(v)
            if len(cur) == 2:
                snaps.append((cur["mem_heap_B"], cur["mem_heap_extra_B"]))
                cur = {}
    useful, extra = max(snaps, key=sum)
    print("  heap peak (massif): %d bytes useful + %d allocator overhead = %.1f KiB"
          % (useful, extra, (useful + extra) / 1024))
    # The peak snapshot's first level: who called malloc, biggest first.
    out = subprocess.run(["ms_print", "--threshold=3", path], capture_output=True,
                         text=True).stdout
    m = re.search(r"(\d+) \(peak\)", out)
    row = re.search(r"^\s+%s\s+[\d,]+\s+[\d,]+" % m.group(1), out, re.M) if m else None
    peak = out[row.end():] if row else ""
    shown = 0
    print("  largest allocation sites at the peak:")
    for line in peak.splitlines():
        m = re.match(r"^->\s*([\d.]+)% \(([\d,]+)B\) (.*)$", line)
        if m and shown < 6:
            site = re.sub(r"^0x[0-9A-F]+: ", "", m.group(3))[:72]
            print("    %9s B  %s" % (m.group(2), site))
            shown += 1
        elif line.startswith("---") and shown:
            break


if __name__ == "__main__":
    main(sys.argv[1])
