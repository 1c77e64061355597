# Plausible mistake: seeds the start cell with 1 without checking that it is blocked.
import sys

MOD = 10**9 + 7
data = sys.stdin.read().split()
r, c = int(data[0]), int(data[1])
g = data[2:2 + r]
dp = [[0] * c for _ in range(r)]
dp[0][0] = 1
for i in range(r):
    for j in range(c):
        if (i, j) == (0, 0):
            continue
        if g[i][j] == "#":
            continue
        up = dp[i - 1][j] if i > 0 else 0
        left = dp[i][j - 1] if j > 0 else 0
        dp[i][j] = (up + left) % MOD
print(dp[r - 1][c - 1])
