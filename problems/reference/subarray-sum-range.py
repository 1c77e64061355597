import sys
from bisect import bisect_left, bisect_right


def main():
    data = sys.stdin.buffer.read().split()
    n, lo, hi = int(data[0]), int(data[1]), int(data[2])
    prefix = [0] * (n + 1)
    s = 0
    for i in range(n):
        s += int(data[3 + i])
        prefix[i + 1] = s
    # count pairs i < j with lo <= prefix[j] - prefix[i] <= hi, with a Fenwick tree over ranks
    vals = sorted(set(prefix))
    m = len(vals)
    rank = {v: i + 1 for i, v in enumerate(vals)}
    tree = [0] * (m + 1)
    total = 0
    for p in prefix:
        a = bisect_left(vals, p - hi)   # ranks 1..a hold values < p - hi
        b = bisect_right(vals, p - lo)  # ranks 1..b hold values <= p - lo
        if b > a:
            cnt = 0
            j = b
            while j > 0:
                cnt += tree[j]
                j &= j - 1
            j = a
            while j > 0:
                cnt -= tree[j]
                j &= j - 1
            total += cnt
        j = rank[p]
        while j <= m:
            tree[j] += 1
            j += j & -j
    print(total)


main()
