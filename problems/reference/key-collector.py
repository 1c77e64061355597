import sys
from collections import deque


def main():
    data = sys.stdin.read().split()
    h, w = int(data[0]), int(data[1])
    grid = "".join(data[2:2 + h])
    start = grid.index("S")
    points = [start] + [i for i, ch in enumerate(grid) if ch == "K"]
    k = len(points) - 1
    if k == 0:
        print(0)
        return

    def bfs(src):
        dist = [-1] * (h * w)
        dist[src] = 0
        q = deque([src])
        while q:
            u = q.popleft()
            r, c = divmod(u, w)
            du = dist[u] + 1
            for v, ok in ((u - w, r > 0), (u + w, r < h - 1), (u - 1, c > 0), (u + 1, c < w - 1)):
                if ok and dist[v] < 0 and grid[v] != "#":
                    dist[v] = du
                    q.append(v)
        return [dist[p] for p in points]

    d = [bfs(p) for p in points]
    if any(x < 0 for x in d[0]):
        print(-1)
        return
    INF = float("inf")
    full = (1 << k) - 1
    # best[mask][i]: shortest walk from S that has visited exactly the keys in mask, ending at key i
    best = [[INF] * k for _ in range(1 << k)]
    for i in range(k):
        best[1 << i][i] = d[0][i + 1]
    for mask in range(1, full + 1):
        row = best[mask]
        for i in range(k):
            cur = row[i]
            if cur == INF:
                continue
            di = d[i + 1]
            for j in range(k):
                bit = 1 << j
                if mask & bit:
                    continue
                nm = mask | bit
                cand = cur + di[j + 1]
                if cand < best[nm][j]:
                    best[nm][j] = cand
    print(min(best[full]))


main()
