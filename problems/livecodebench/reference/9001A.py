import sys

data = sys.stdin.read().split()
t = int(data[0])
pos = 1
out = []
for _ in range(t):
    n = int(data[pos])
    a = data[pos + 1:pos + 1 + n]
    pos += 1 + n
    odd = sum(int(x) & 1 for x in a)
    out.append(min(odd, n - odd))
print("\n".join(map(str, out)))
