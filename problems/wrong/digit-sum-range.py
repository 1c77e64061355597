# Plausible mistake: a correct digit DP for [0, x], but the range is taken as f(R) - f(L)
# instead of f(R) - f(L - 1), so L itself is never counted.
import sys
from functools import lru_cache


def count_upto(x, k):
    digits = list(map(int, str(x)))

    @lru_cache(maxsize=None)
    def go(pos, rem, tight):
        if pos == len(digits):
            return 1 if rem == 0 else 0
        top = digits[pos] if tight else 9
        return sum(go(pos + 1, (rem + d) % k, tight and d == top) for d in range(top + 1))

    return go(0, 0, True)


data = sys.stdin.read().split()
t = int(data[0])
for i in range(t):
    lo, hi, k = int(data[1 + 3 * i]), int(data[2 + 3 * i]), int(data[3 + 3 * i])
    print(count_upto(hi, k) - count_upto(lo, k))
