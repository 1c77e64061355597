# Plausible mistake: finds the cheapest route without the coupon, then halves its most expensive
# flight. A route that is worse at full price can be better after the discount.
import sys
from heapq import heappop, heappush

data = sys.stdin.read().split()
n, m = int(data[0]), int(data[1])
adj = [[] for _ in range(n + 1)]
for i in range(m):
    a, b, c = int(data[2 + 3 * i]), int(data[3 + 3 * i]), int(data[4 + 3 * i])
    adj[a].append((b, c))
INF = float("inf")
dist = [INF] * (n + 1)
via = [None] * (n + 1)  # (previous city, cost of the flight used)
dist[1] = 0
heap = [(0, 1)]
while heap:
    d, u = heappop(heap)
    if d > dist[u]:
        continue
    for v, c in adj[u]:
        if d + c < dist[v]:
            dist[v] = d + c
            via[v] = (u, c)
            heappush(heap, (d + c, v))
if dist[n] == INF:
    print(-1)
else:
    most = 0
    v = n
    while v != 1:
        u, c = via[v]
        most = max(most, c)
        v = u
    print(dist[n] - most + most // 2)
