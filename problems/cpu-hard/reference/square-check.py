import math
import sys

data = sys.stdin.read().split()
t = int(data[0])
out = []
for x in data[1:1 + t]:
    n = int(x)
    r = math.isqrt(n)
    out.append("YES" if r * r == n else "NO")
print("\n".join(out))
