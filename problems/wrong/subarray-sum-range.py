# Plausible mistake: a sliding window that is only valid when every element is non-negative.
import sys

data = sys.stdin.read().split()
n, lo, hi = int(data[0]), int(data[1]), int(data[2])
a = list(map(int, data[3:3 + n]))


def at_most(limit):
    # number of subarrays with sum <= limit, assuming sums only grow when a window is extended
    if limit < 0:
        return 0
    total = s = left = 0
    for right in range(n):
        s += a[right]
        while s > limit and left <= right:
            s -= a[left]
            left += 1
        total += right - left + 1
    return total


print(at_most(hi) - at_most(lo - 1))
