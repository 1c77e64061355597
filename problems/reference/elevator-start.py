class Solution:
    def minStartFloor(self, moves: list[int]) -> int:
        floor = 0
        lowest = 0  # the starting point itself counts
        for m in moves:
            floor += m
            if floor < lowest:
                lowest = floor
        return -lowest
