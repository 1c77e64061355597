import sys

MOD = 10**9 + 7


def main():
    data = sys.stdin.read().split()
    r, c = int(data[0]), int(data[1])
    rows = data[2:2 + r]
    dp = [0] * c
    for i in range(r):
        row = rows[i]
        left = 0
        for j in range(c):
            if row[j] == "#":
                left = 0
            elif i == 0 and j == 0:
                left = 1
            else:
                left = (left + dp[j]) % MOD
            dp[j] = left
    print(dp[c - 1])


main()
