# Too slow: extends every window from each left end; O(n^2) when windows are long.
import sys

data = sys.stdin.read().split()
n, k = int(data[0]), int(data[1])
a = data[2:2 + n]
total = 0
for i in range(n):
    seen = set()
    for j in range(i, n):
        seen.add(a[j])
        if len(seen) > k:
            break
        total += 1
print(total)
