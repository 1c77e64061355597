import math
import sys

data = sys.stdin.read().split()
t = int(data[0])
out = []
for x in data[1:1 + t]:
    n = int(x)
    r = math.isqrt(n)
    if r * r < n:
        r += 1
    out.append(str(r * r))
print("\n".join(out))
