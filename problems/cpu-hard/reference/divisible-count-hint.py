import sys

data = sys.stdin.read().split()
t = int(data[0])
out = []
for i in range(t):
    a, b, k = (int(x) for x in data[1 + 3 * i:4 + 3 * i])
    out.append(str(b // k - (a - 1) // k))  # inclusive: A itself counts
print("\n".join(out))
