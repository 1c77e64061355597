class Solution:
    def countTriplets(self, nums: list[int]) -> int:
        vals = sorted(set(nums))
        rank = {v: i + 1 for i, v in enumerate(vals)}
        m = len(vals)
        r = [rank[v] for v in nums]
        # left[i]: how many earlier elements are strictly smaller (Fenwick tree over ranks)
        tree = [0] * (m + 1)
        left = [0] * len(r)
        for i, x in enumerate(r):
            s, j = 0, x - 1
            while j > 0:
                s += tree[j]
                j &= j - 1
            left[i] = s
            j = x
            while j <= m:
                tree[j] += 1
                j += j & -j
        # right side: how many later elements are strictly larger
        tree = [0] * (m + 1)
        total = 0
        seen = 0
        for i in range(len(r) - 1, -1, -1):
            x = r[i]
            s, j = 0, x
            while j > 0:
                s += tree[j]
                j &= j - 1
            total += left[i] * (seen - s)
            seen += 1
            j = x
            while j <= m:
                tree[j] += 1
                j += j & -j
        return total
