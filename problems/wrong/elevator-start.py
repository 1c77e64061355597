# Plausible mistake: forgets that the starting floor itself is a lower bound (answer can't be negative).
from itertools import accumulate


class Solution:
    def minStartFloor(self, moves: list[int]) -> int:
        if not moves:
            return 0
        return -min(accumulate(moves))
