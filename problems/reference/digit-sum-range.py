import sys

MAXLEN = 19  # numbers up to 10**18 have at most 19 digits
MAXSUM = 9 * MAXLEN

# ways[l][s]: strings of l decimal digits (leading zeros allowed) whose digits sum to s
ways = [[0] * (MAXSUM + 1) for _ in range(MAXLEN + 1)]
ways[0][0] = 1
for l in range(1, MAXLEN + 1):
    prev, cur = ways[l - 1], ways[l]
    for s in range(9 * (l - 1) + 1):
        w = prev[s]
        if w:
            for d in range(10):
                cur[s + d] += w

_by_residue = {}


def residue_table(k):
    """res[l][r]: strings of l digits whose digit sum is congruent to r modulo k."""
    t = _by_residue.get(k)
    if t is None:
        t = []
        for l in range(MAXLEN + 1):
            row = [0] * k
            for s in range(9 * l + 1):
                row[s % k] += ways[l][s]
            t.append(row)
        _by_residue[k] = t
    return t


def count_upto(x, k):
    """How many integers in [0, x] have a digit sum divisible by k."""
    if x < 0:
        return 0
    res = residue_table(k)
    digits = str(x)
    n = len(digits)
    total = 0
    prefix = 0
    for i, ch in enumerate(digits):
        d = int(ch)
        rest = n - i - 1
        row = res[rest]
        for smaller in range(d):
            total += row[(-(prefix + smaller)) % k]
        prefix += d
    if prefix % k == 0:
        total += 1  # x itself
    return total


def main():
    data = sys.stdin.read().split()
    t = int(data[0])
    out = []
    for i in range(t):
        lo, hi, k = int(data[1 + 3 * i]), int(data[2 + 3 * i]), int(data[3 + 3 * i])
        out.append(count_upto(hi, k) - count_upto(lo - 1, k))
    print("\n".join(map(str, out)))


main()
