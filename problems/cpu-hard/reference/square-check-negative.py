import math
import sys

data = sys.stdin.read().split()
t = int(data[0])
out = []
for x in data[1:1 + t]:
    n = int(x)
    if n < 0:  # no integer squares to a negative number (and math.isqrt(n) would raise)
        out.append("NO")
        continue
    r = math.isqrt(n)
    out.append("YES" if r * r == n else "NO")
print("\n".join(out))
