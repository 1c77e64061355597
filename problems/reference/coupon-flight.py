import sys
from heapq import heappop, heappush


def main():
    data = sys.stdin.buffer.read().split()
    n, m = int(data[0]), int(data[1])
    adj = [[] for _ in range(n + 1)]
    for i in range(m):
        a, b, c = int(data[2 + 3 * i]), int(data[3 + 3 * i]), int(data[4 + 3 * i])
        adj[a].append((b, c))
    INF = float("inf")
    # state: city * 2 + used (0 = coupon still available, 1 = coupon spent)
    dist = [INF] * (2 * (n + 1))
    dist[2] = 0
    heap = [(0, 2)]
    while heap:
        d, s = heappop(heap)
        if d > dist[s]:
            continue
        u, used = s >> 1, s & 1
        for v, c in adj[u]:
            t = 2 * v + used
            nd = d + c
            if nd < dist[t]:
                dist[t] = nd
                heappush(heap, (nd, t))
            if not used:
                t = 2 * v + 1
                nd = d + c // 2
                if nd < dist[t]:
                    dist[t] = nd
                    heappush(heap, (nd, t))
    best = min(dist[2 * n], dist[2 * n + 1])
    print(-1 if best == INF else best)


main()
