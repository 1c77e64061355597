from typing import List


class Solution:
    def prefixMaxima(self, nums: List[int]) -> List[int]:
        out = []
        best = None
        for x in nums:
            best = x if best is None or x > best else best
            out.append(best)
        return out
