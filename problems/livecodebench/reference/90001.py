from typing import List


class Solution:
    def countDivisiblePairs(self, nums: List[int], k: int) -> int:
        seen = {}
        pairs = 0
        for x in nums:
            r = x % k
            pairs += seen.get((k - r) % k, 0)
            seen[r] = seen.get(r, 0) + 1
        return pairs
