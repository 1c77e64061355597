from heapq import heappop, heappush


class Solution:
    def minRooms(self, meetings: list[list[int]]) -> int:
        ends = []  # end times of the rooms in use
        best = 0
        for start, end in sorted(meetings):
            while ends and ends[0] <= start:  # [s, e) intervals: a room freed at t is free at t
                heappop(ends)
            heappush(ends, end)
            best = max(best, len(ends))
        return best
