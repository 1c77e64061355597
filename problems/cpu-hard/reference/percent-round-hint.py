import sys

data = sys.stdin.read().split()
n = int(data[0])
out = []
for i in range(n):
    s, m = int(data[1 + 2 * i]), int(data[2 + 2 * i])
    # nearest integer to 100*s/m, halves up (not Python's round-half-to-even)
    out.append(str((200 * s + m) // (2 * m)))
print("\n".join(out))
