# Plausible mistake: greedy, always walks to the nearest key not yet collected.
import sys
from collections import deque

data = sys.stdin.read().split()
h, w = int(data[0]), int(data[1])
g = data[2:2 + h]


def bfs(src):
    dist = {src: 0}
    q = deque([src])
    while q:
        i, j = q.popleft()
        for a, b in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
            if 0 <= a < h and 0 <= b < w and g[a][b] != "#" and (a, b) not in dist:
                dist[(a, b)] = dist[(i, j)] + 1
                q.append((a, b))
    return dist


cur = next((i, j) for i in range(h) for j in range(w) if g[i][j] == "S")
keys = {(i, j) for i in range(h) for j in range(w) if g[i][j] == "K"}
total = 0
while keys:
    dist = bfs(cur)
    reachable = [k for k in keys if k in dist]
    if len(reachable) < len(keys):
        total = -1
        break
    nxt = min(reachable, key=lambda k: dist[k])
    total += dist[nxt]
    keys.remove(nxt)
    cur = nxt
print(total)
