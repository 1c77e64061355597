import sys

data = sys.stdin.read().split()
t = int(data[0])
out = []
for i in range(t):
    a, b = int(data[1 + 2 * i]), int(data[2 + 2 * i])
    q = abs(a) // abs(b)
    out.append(str(-q if (a < 0) != (b < 0) else q))
print("\n".join(out))
