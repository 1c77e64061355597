import sys

data = sys.stdin.read().split()
t = int(data[0])
pos = 1
out = []
for _ in range(t):
    n = int(data[pos])
    a = [int(x) for x in data[pos + 1:pos + 1 + n]]
    pos += 1 + n
    out.append(str(min(a)) if a else "EMPTY")
print("\n".join(out))
