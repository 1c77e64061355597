# Plausible mistake: treats a meeting that starts exactly when another ends as overlapping.
from heapq import heappop, heappush


class Solution:
    def minRooms(self, meetings: list[list[int]]) -> int:
        ends = []
        best = 0
        for start, end in sorted(meetings):
            while ends and ends[0] < start:
                heappop(ends)
            heappush(ends, end)
            best = max(best, len(ends))
        return best
