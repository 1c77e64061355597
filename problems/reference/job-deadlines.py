from heapq import heappop, heappush


class Solution:
    def maxProfit(self, deadlines: list[int], profits: list[int]) -> int:
        chosen = []  # min-heap of the profits of the jobs kept so far
        for d, p in sorted(zip(deadlines, profits)):
            heappush(chosen, p)
            if len(chosen) > d:  # more jobs than slots 1..d: drop the least profitable
                heappop(chosen)
        return sum(chosen)
