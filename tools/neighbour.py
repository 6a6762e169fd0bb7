"""A neighbour that comes and goes, for timing experiments (docs/benchmark.md, repeatability):
spins one core for ON seconds, then sleeps OFF seconds, until killed.

    python3 tools/neighbour.py 75 75 &   # ... run the comparison ...; kill %1
"""

import sys
import time


def main() -> None:
    on, off = float(sys.argv[1]), float(sys.argv[2])
    while True:
        end = time.time() + on
        while time.time() < end:
            pass
        time.sleep(off)


if __name__ == "__main__":
    main()
